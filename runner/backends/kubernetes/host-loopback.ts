/**
 * A runner on a Kubernetes node forwards `localhost:` endpoints from the pod network's host address
 * to the host's 127.0.0.1, and the kubelet's KUBE-FIREWALL drops exactly such connections (a
 * non-loopback source to 127.0.0.0/8). A root runner lets them through on `lo` only, with one ACCEPT
 * at the top of INPUT and of OUTPUT, and checks before every run that they are still first: kube-proxy
 * and the kubelet put their own jumps there when they (re)create them, and a rule inside KUBE-FIREWALL
 * is flushed by the kubelet's next sync. Nothing happens where there is no KUBE-FIREWALL.
 */
import { execa } from "execa";

export const LOOPBACK_EXEMPTION_COMMENT = "airlock: runner forwarders to the host loopback";

function rule(chain: "INPUT" | "OUTPUT", address: string): string[] {
  return [
    chain,
    chain === "INPUT" ? "-i" : "-o",
    "lo",
    "-s",
    `${address}/32`,
    "-d",
    "127.0.0.0/8",
    "-m",
    "comment",
    "--comment",
    LOOPBACK_EXEMPTION_COMMENT,
    "-j",
    "ACCEPT",
  ];
}

export async function ensureLoopbackExemption(address: string): Promise<void> {
  if (process.getuid?.() !== 0 || process.platform !== "linux") return;
  const firewall = await execa("iptables", ["-w", "-S", "KUBE-FIREWALL"], { reject: false });
  if (firewall.exitCode !== 0) return;
  for (const chain of ["INPUT", "OUTPUT"] as const) {
    const listed = await execa("iptables", ["-w", "-S", chain], { reject: false });
    const first = listed.stdout.split("\n").find((l) => l.startsWith("-A "));
    if (first?.includes(LOOPBACK_EXEMPTION_COMMENT) && first.includes(`${address}/32`)) continue;
    // Not first (or missing): take every copy out and put one at the top.
    while ((await execa("iptables", ["-w", "-D", ...rule(chain, address)], { reject: false })).exitCode === 0);
    await execa("iptables", ["-w", "-I", ...rule(chain, address).slice(0, 1), "1", ...rule(chain, address).slice(1)]);
  }
}
