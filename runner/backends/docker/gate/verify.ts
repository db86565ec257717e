/**
 * The runner's own check that a sandbox's rules are in force, made from outside the container
 * before the agent may start: the kernel's copy of the rules is read back and compared, rule by
 * rule, with what the runner sent. Whatever ran inside the container (the init of an airlock image,
 * or a gate container) does not get the last word on whether the gate is up.
 *
 * A root runner reads them with the host's iptables-save under nsenter (a few ms). Other runners
 * start a short-lived verifier container from airlock's gate image in the same namespace.
 */
import type Docker from "dockerode";
import { GateError } from "../../../errors.js";
import { canInspectFromHost, saveRules, type Backend } from "./netns.js";
import { compareRulesets, type ExpectedRules } from "../../../gate/compare-rules.js";
import { startReplacingLost } from "../engine/lost-start.js";

export type { ExpectedRules } from "../../../gate/compare-rules.js";

export interface VerifyTarget {
  /** A process in the namespace (the container's init), seen from the host. */
  pid: number;
  /** The container that owns the namespace (for the verifier container). */
  containerId: string;
  /** Backend the gate says it used; the other one is read too if this one does not match. */
  backend?: Backend;
}

export interface Verifier {
  verify(target: VerifyTarget, expected: ExpectedRules): Promise<void>;
}

/** Read back with the host's tools (root runner). */
export const hostVerifier: Verifier = {
  async verify(target, expected) {
    const order: Backend[] = target.backend === "nft" ? ["nft", "legacy"] : ["legacy", "nft"];
    const problems: string[] = [];
    for (const backend of order) {
      const actual = await saveRules(target.pid, backend);
      const problem = compareRulesets(expected.v4, actual.v4) ?? compareRulesets(expected.v6, actual.v6);
      if (!problem) return;
      problems.push(`${backend}: ${problem}`);
    }
    throw new GateError(
      `the egress rules in the agent's network namespace are not the ones airlock sent (${problems.join(" | ")}); the agent was not started`,
      "run `airlock doctor`; if it persists, report it: something changed the rules before the agent started",
    );
  },
};

/** Read back from a verifier container of airlock's gate image, joined to the namespace (runner not root). */
export function containerVerifier(docker: Docker, gateImage: string, labels: Record<string, string>): Verifier {
  return {
    async verify(target, expected) {
      const script =
        'for b in legacy nft; do echo "@@ $b v4"; iptables-$b-save 2>/dev/null; echo "@@ $b v6"; ip6tables-$b-save 2>/dev/null; done';
      // A verifier whose process the engine lost before its start is replaced once.
      await startReplacingLost(() => readBack(script, target, expected));
    },
  };
  async function readBack(script: string, target: VerifyTarget, expected: ExpectedRules): Promise<void> {
    const container = await docker.createContainer({
      Image: gateImage,
      Entrypoint: ["sh", "-c", script],
      Labels: labels,
      HostConfig: {
        NetworkMode: `container:${target.containerId}`,
        CapDrop: ["ALL"],
        CapAdd: ["NET_ADMIN", "NET_RAW"],
        SecurityOpt: ["no-new-privileges:true"],
        ReadonlyRootfs: true,
        Tmpfs: { "/run": "rw,size=1m", "/tmp": "rw,size=1m" },
        Memory: 32 * 1024 * 1024,
        PidsLimit: 16,
      } as Docker.HostConfig,
    });
    try {
      await container.start();
      await container.wait();
      const logs = demuxLogs(await container.logs({ stdout: true, stderr: false, follow: false }));
      const sections = new Map<string, string>();
      for (const part of logs.split(/^@@ /m).slice(1)) {
        const nl = part.indexOf("\n");
        sections.set(part.slice(0, nl).trim(), part.slice(nl + 1));
      }
      const problems: string[] = [];
      for (const backend of ["legacy", "nft"] as const) {
        const problem =
          compareRulesets(expected.v4, sections.get(`${backend} v4`) ?? "") ??
          compareRulesets(expected.v6, sections.get(`${backend} v6`) ?? "");
        if (!problem) return;
        problems.push(`${backend}: ${problem}`);
      }
      throw new GateError(
        `the egress rules in the agent's network namespace are not the ones airlock sent (${problems.join(" | ")}); the agent was not started`,
        "run `airlock doctor`; if it persists, report it",
      );
    } finally {
      // The verifier container is labelled; one that resists removal is removed by the orphan sweep.
      await container.remove({ force: true }).catch(() => {});
    }
  }
}

export function defaultVerifier(docker: Docker, gateImage: string, labels: Record<string, string>): Verifier {
  return canInspectFromHost() ? hostVerifier : containerVerifier(docker, gateImage, labels);
}

/** A non-TTY container's log buffer is framed: [stream, 0, 0, 0, size (4 bytes)] then the payload. */
function demuxLogs(buffer: Buffer): string {
  const parts: Buffer[] = [];
  for (let at = 0; at + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(at + 4);
    parts.push(buffer.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(parts).toString("utf8");
}
