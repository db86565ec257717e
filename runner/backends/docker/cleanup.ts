/**
 * Removing what airlock left behind: containers whose runner died (or that outlived their deadline),
 * and, when asked, every airlock container and the airlock network.
 */
import type Docker from "dockerode";
import { removeHostChains, removeStaleHostRules } from "./gate/host-netfilter.js";
import { isNotFound } from "./engine/client.js";
import { isOrphaned, LABEL } from "../../labels.js";
import { BRIDGE_INTERFACE, NETWORK_NAME } from "./network.js";
import { sweepSandboxFolders } from "./sandbox/folder.js";

export interface CleanupReport {
  containersRemoved: string[];
  networkRemoved: boolean;
  /** Host folders of pooled sandboxes whose runner is gone. */
  foldersRemoved?: number;
  /** /output volumes nothing uses whose runner is gone. */
  volumesRemoved?: number;
}

export interface CleanupOptions {
  /** Remove every airlock container, including those of runs still going. */
  all?: boolean;
  /** Also remove the airlock network when no container uses it. */
  network?: boolean;
}

const listManaged = (docker: Docker) =>
  docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] } });

export async function cleanup(docker: Docker, options: CleanupOptions = {}): Promise<CleanupReport> {
  const containers = await listManaged(docker);
  const doomed = containers.filter((c) => options.all || isOrphaned(c.Labels));
  const removed: string[] = [];
  await Promise.all(
    doomed.map(async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
        removed.push(c.Names[0]?.replace(/^\//, "") ?? c.Id.slice(0, 12));
      } catch (err) {
        if (!isNotFound(err) && (err as { statusCode?: number }).statusCode !== 409) throw err;
      }
    }),
  );
  // Host rules for localhost endpoints belong to a run: they go when none of its containers is left.
  // Listed again, after the rules are read: a run that starts meanwhile keeps its rules.
  // A pooled sandbox is labelled "pool"; once claimed, its name says its run (airlock-<run>).
  const runOf = (c: Docker.ContainerInfo) =>
    c.Labels[LABEL.run] === "pool" ? (c.Names[0] ?? "").replace(/^\/?airlock-/, "") : (c.Labels[LABEL.run] ?? "");
  const runsWithContainers = async () => new Set((await listManaged(docker)).map(runOf));
  // A sweep that fails leaves rules for the next cleanup; the report counts what went.
  await removeStaleHostRules(runsWithContainers).catch(() => 0);
  let networkRemoved = false;
  if (options.network || options.all) networkRemoved = await removeNetworkIfUnused(docker);
  // A sweep that fails leaves folders for the next cleanup; the report counts what went.
  const foldersRemoved = await sweepSandboxFolders().catch(() => 0);
  // A sweep that fails leaves volumes for the next cleanup; the report counts what went.
  const volumesRemoved = await sweepVolumes(docker, options.all === true).catch(() => 0);
  return {
    containersRemoved: removed.sort(),
    networkRemoved,
    ...(foldersRemoved ? { foldersRemoved } : {}),
    ...(volumesRemoved ? { volumesRemoved } : {}),
  };
}

/**
 * /output volumes (labelled like their containers) that no container uses any more and whose runner
 * is gone or whose time is up (all of airlock's unused ones with `all`): what a crash, an engine
 * restart or a removal race left. A volume in use is never touched (the engine refuses, 409).
 */
async function sweepVolumes(docker: Docker, all: boolean): Promise<number> {
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABEL.managed}=true`], dangling: ["true"] } });
  let removed = 0;
  for (const v of Volumes ?? []) {
    if (!all && !isOrphaned(v.Labels ?? undefined)) continue;
    await docker
      .getVolume(v.Name)
      .remove()
      .then(
        () => removed++,
        () => {},
      );
  }
  return removed;
}

async function removeNetworkIfUnused(docker: Docker): Promise<boolean> {
  try {
    const net = docker.getNetwork(NETWORK_NAME);
    const info = await net.inspect();
    if (Object.keys(info.Containers ?? {}).length > 0) return false;
    await net.remove();
    const bridge = (info.Options as Record<string, string> | undefined)?.["com.docker.network.bridge.name"];
    // Best effort: rules hooked to a bridge that is gone match nothing; the next setup checks them again.
    await removeHostChains(bridge ?? BRIDGE_INTERFACE).catch(() => {});
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    // 403/409: still in use by a container that appeared meanwhile.
    if ([403, 409].includes((err as { statusCode?: number }).statusCode ?? 0)) return false;
    throw err;
  }
}
