/**
 * The bridge network agents attach to. One shared, labelled network with inter-container traffic
 * disabled (enable_icc=false): containers on it cannot talk to each other even before their gates
 * apply, and a single network scales to many concurrent agents without exhausting address pools.
 */
import type Docker from "dockerode";
import { isNotFound } from "./client.js";
import { LABEL } from "./labels.js";

export const NETWORK_NAME = "airlock";
export const BRIDGE_INTERFACE = "airlock0";

export interface AirlockNetwork {
  id: string;
  name: string;
  /** The host's address on this bridge; loopback endpoints are forwarded from here. */
  gateway: string;
  subnet: string;
  /** The bridge's interface on the host. */
  interface: string;
}

let pending: Promise<AirlockNetwork> | undefined;

export function ensureNetwork(docker: Docker): Promise<AirlockNetwork> {
  pending ??= createOrFind(docker).catch((err) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

/** Forget the cached network (after `airlock cleanup` removed it). */
export function forgetNetwork(): void {
  pending = undefined;
}

async function createOrFind(docker: Docker): Promise<AirlockNetwork> {
  const existing = await inspect(docker);
  if (existing) return existing;
  try {
    await docker.createNetwork({
      Name: NETWORK_NAME,
      Driver: "bridge",
      CheckDuplicate: true,
      Internal: false,
      EnableIPv6: false,
      Labels: { [LABEL.managed]: "true", [LABEL.kind]: "network" },
      Options: {
        "com.docker.network.bridge.enable_icc": "false",
        "com.docker.network.bridge.name": BRIDGE_INTERFACE,
      },
    });
  } catch (err) {
    // Another runner created it at the same moment: use theirs.
    if ((err as { statusCode?: number }).statusCode !== 409) throw err;
  }
  const created = await inspect(docker);
  if (!created) throw new Error(`network ${NETWORK_NAME} vanished right after it was created`);
  return created;
}

async function inspect(docker: Docker): Promise<AirlockNetwork | undefined> {
  try {
    const info = await docker.getNetwork(NETWORK_NAME).inspect();
    const ipam = (info.IPAM?.Config ?? [])[0] as { Gateway?: string; Subnet?: string } | undefined;
    if (!ipam?.Gateway || !ipam.Subnet) throw new Error(`network ${NETWORK_NAME} has no IPv4 gateway; remove it with airlock cleanup --all`);
    const iface = (info.Options as Record<string, string> | undefined)?.["com.docker.network.bridge.name"] ?? `br-${info.Id.slice(0, 12)}`;
    return { id: info.Id, name: info.Name, gateway: ipam.Gateway, subnet: ipam.Subnet, interface: iface };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
