/**
 * Looking into a container's network namespace from the host, without running anything inside the
 * container: the kernel's own view of the rules (iptables-save run by the host under nsenter), the
 * denied-connection tables (/proc/<pid>/net/ipt_hashlimit, per namespace), and which host interface
 * is the container's end of the bridge. Needs a root runner; runners that are not root use a
 * verifier container from airlock's gate image instead (verify.ts).
 */
import { execFile } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { GateError } from "../../../errors.js";
import { DENY_TABLE_NAMES } from "../../../gate/protocol.js";

export type Backend = "legacy" | "nft";

/** Whether this process can look into other processes' network namespaces (root on Linux). */
export function canInspectFromHost(): boolean {
  return process.platform === "linux" && process.getuid?.() === 0;
}

/** iptables-save output (IPv4, then IPv6) of the namespace of `pid`, as the kernel holds it. */
export async function saveRules(pid: number, backend: Backend): Promise<{ v4: string; v6: string }> {
  // Both families at once: this sits on the agent's start path.
  const save = async (family: "iptables" | "ip6tables") => {
    // node's own execFile: a few ms less per process than execa, on the agent's start path.
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        "nsenter",
        [`--net=/proc/${pid}/ns/net`, `${family}-${backend}-save`],
        { maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
            stdout,
            stderr: stderr || (err?.message ?? ""),
          }),
      ),
    );
    if (r.code !== 0)
      throw new GateError(
        `could not read the rules in the agent's network namespace (${family}-${backend}-save: ${r.stderr.trim() || `exit ${r.code}`})`,
        "install iptables on the host (apt-get install iptables)",
      );
    return r.stdout;
  };
  const [v4, v6] = await Promise.all([save("iptables"), save("ip6tables")]);
  return { v4, v6 };
}

/** The denied-connection tables of the namespace of `pid`, in the report format ("== table" + lines). */
export async function readDeniedTables(pid: number): Promise<string> {
  const parts = await Promise.all(
    DENY_TABLE_NAMES.map(
      // A table the kernel does not show (no packets matched) is an empty report.
      async (t) => `== ${t}\n${await readFile(`/proc/${pid}/net/ipt_hashlimit/${t}`, "utf8").catch(() => "")}`,
    ),
  );
  return parts.join("\n");
}

/** The host-side interface (veth) of the container's eth0. */
export async function hostInterfaceOf(pid: number): Promise<string | undefined> {
  // The container's sysfs shows its own namespace: eth0's iflink is the host peer's ifindex.
  const peer = (await readFile(`/proc/${pid}/root/sys/class/net/eth0/iflink`, "utf8").catch(() => "")).trim();
  if (!peer) return undefined;
  for (const name of await readdir("/sys/class/net").catch(() => [] as string[])) {
    // An interface gone meanwhile is not the one looked for.
    const index = (await readFile(`/sys/class/net/${name}/ifindex`, "utf8").catch(() => "")).trim();
    if (index === peer) return name;
  }
  return undefined;
}
