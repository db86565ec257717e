/**
 * Labels on everything airlock creates, so that a later run (or `airlock cleanup`) can find and
 * remove what a crashed runner left behind: Docker's containers, networks and images, and the
 * Kubernetes objects (as labels and annotations), by the same keys and the same rule of ownership.
 */
import { hostname } from "node:os";

export const LABEL = {
  managed: "dev.airlock.managed",
  run: "dev.airlock.run",
  role: "dev.airlock.role",
  agent: "dev.airlock.agent",
  owner: "dev.airlock.owner",
  expires: "dev.airlock.expires",
  kind: "dev.airlock.kind",
  contentHash: "dev.airlock.content-hash",
} as const;

export type Role = "gate" | "agent" | "check" | "output";

/** `host:pid` of this runner process. */
export function ownerId(): string {
  return `${hostname()}:${process.pid}`;
}

export function runLabels(runId: string, role: Role, agentName: string, expiresAt: number): Record<string, string> {
  return {
    [LABEL.managed]: "true",
    [LABEL.run]: runId,
    [LABEL.role]: role,
    [LABEL.agent]: agentName,
    [LABEL.owner]: ownerId(),
    [LABEL.expires]: String(expiresAt),
  };
}

/** Whether the runner that created a resource is gone: its process is dead, or the resource outlived its deadline. */
export function isOrphaned(labels: Record<string, string> | undefined, now = Date.now()): boolean {
  if (!labels) return false;
  const expires = Number(labels[LABEL.expires]);
  if (Number.isFinite(expires) && expires > 0 && expires < now) return true;
  const [host, pidText] = (labels[LABEL.owner] ?? "").split(":");
  if (host !== hostname()) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
