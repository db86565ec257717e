/**
 * The bridge network agents attach to. One shared, labelled network with inter-container traffic
 * disabled (enable_icc=false): containers on it cannot talk to each other even before their gates
 * apply, and a single network scales to many concurrent agents without exhausting address pools.
 */
import { existsSync } from "node:fs";
import type Docker from "dockerode";
import { isNotFound } from "./engine/client.js";
import { LABEL } from "../../labels.js";

export const NETWORK_NAME = "airlock";
/** The bridge's name on the host: airlock0, or (a second engine on this host has that one) the next free airlockN. */
export const BRIDGE_INTERFACE = "airlock0";

function freeBridgeName(): string {
  for (let i = 0; i < 64; i++) {
    const name = `airlock${i}`;
    if (!existsSync(`/sys/class/net/${name}`)) return name;
  }
  throw new Error(
    "no free bridge name airlock0..airlock63 on this host; remove unused airlock networks (airlock cleanup --all on each engine)",
  );
}

export interface AirlockNetwork {
  id: string;
  name: string;
  /** The host's address on this bridge; loopback endpoints are forwarded from here. */
  gateway: string;
  subnet: string;
  /** The bridge's interface on the host. */
  interface: string;
}

/**
 * The airlock network on this engine, created when missing. Not cached here: the Docker backend
 * that owns an engine's state keeps the answer (one per engine).
 */
export function ensureNetwork(docker: Docker): Promise<AirlockNetwork> {
  return createOrFind(docker);
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
        "com.docker.network.bridge.name": freeBridgeName(),
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
    if (!ipam?.Gateway || !ipam.Subnet)
      throw new Error(`network ${NETWORK_NAME} has no IPv4 gateway; remove it with airlock cleanup --all`);
    const iface =
      (info.Options as Record<string, string> | undefined)?.["com.docker.network.bridge.name"] ??
      `br-${info.Id.slice(0, 12)}`;
    return { id: info.Id, name: info.Name, gateway: ipam.Gateway, subnet: ipam.Subnet, interface: iface };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
