import { networkInterfaces } from "node:os";
import type Docker from "dockerode";
import { afterAll, beforeAll, describe } from "vitest";
import { createRunner } from "../../../runner/index.js";
import { dockerClient, ensureImages } from "../../../runner/internal.js";
import { waitUntil } from "../../../runner/util/wait-until.js";
import { bridgeGateway, leftoverContainers, type Decoy } from "../helpers.js";
import { SecurityReport } from "./report.js";
import { attackerImage } from "./attacker.js";
import {
  attackConfig,
  dockerBridgeGateway,
  escapeChecks,
  hostDecoys,
  runAttacker,
  startVictim,
  type AttackPath,
  type Victim,
} from "./escape-checks.js";

const HERE = import.meta.dirname;
const report = new SecurityReport("1-escape");

interface DecoyContainer {
  ip: string;
  container: Docker.Container;
  hits(): Promise<string[]>;
}

/** A container on airlock's bridge with TCP, UDP and DNS listeners that log every packet they get. */
async function decoyContainer(image: string, network: string): Promise<DecoyContainer> {
  const docker = dockerClient();
  const script = `
    const net = require("net"), dgram = require("dgram");
    net.createServer((s) => { console.log("HIT tcp " + s.remoteAddress); s.destroy(); }).listen(7001);
    for (const port of [7002, 53]) dgram.createSocket("udp4").on("message", (m, r) => console.log("HIT udp" + port + " " + r.address)).bind(port);
    console.log("decoy up");`;
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ["node", "-e", script],
    User: "0",
    Labels: { "dev.airlock.test": "decoy" },
    HostConfig: { NetworkMode: network },
  });
  await container.start();
  await waitUntil(async () => (await container.logs({ stdout: true, stderr: true })).toString().includes("decoy up"), {
    timeoutMs: 10_000,
    intervalMs: 50,
  });
  const ip = (await container.inspect()).NetworkSettings.Networks[network]!.IPAddress;
  return {
    ip,
    container,
    hits: async () =>
      (await container.logs({ stdout: true, stderr: true }))
        .toString()
        .split("\n")
        .filter((l) => l.includes("HIT")),
  };
}

function escapeSuite(mode: EscapeMode): void {
  describe(`escape attempts, ${mode.label} (policy allows only localhost:6379)`, () => {
    const area = (name: string) => (mode.area ? `${name} (${mode.area})` : name);
    let decoys: Record<string, Decoy> = {};
    let gateway: string;
    let box: DecoyContainer;
    let victim: Victim;
    let attack: Awaited<ReturnType<typeof runAttacker>>;
    const secret = `host-secret-${Date.now()}`;
    // The runner that gives the attacker's sandbox the path this suite is about.
    const runner = createRunner(
      mode.path === "new sandbox"
        ? { gatePoolSize: 0 }
        : mode.path === "pooled sandbox"
          ? { gatePoolSize: 0, pool: { size: 1 } }
          : {},
    );

    beforeAll(async () => {
      const image = await attackerImage({ airlockBuilt: mode.airlockBuilt, language: mode.language });
      gateway = await bridgeGateway();
      const dockerBridge = await dockerBridgeGateway();
      decoys = await hostDecoys(gateway, dockerBridge);
      const linkLocal = Object.entries(networkInterfaces())
        .find(([n]) => n === "airlock0")?.[1]
        ?.find((i) => i.family === "IPv6" && i.address.startsWith("fe80"));
      box = await decoyContainer((await ensureImages(dockerClient())).agent, "airlock");
      victim = await startVictim();
      const ipv6 = linkLocal
        ? [{ id: "host-link-local", host: `${linkLocal.address}%eth0`, port: decoys.ipv6!.port }]
        : [];
      if (mode.path === "ready gate") {
        await runner.prepareGates(1);
        await waitUntil(async () => runner.gateReadyNow(), { timeoutMs: 30_000, intervalMs: 50 });
      }
      attack = await runAttacker(
        { image, language: mode.language, runner, path: mode.path },
        attackConfig({ gateway, dockerBridge, decoys, boxIp: box.ip, victimIp: victim.ip, ipv6 }),
        HERE,
        secret,
      );
    }, 600_000);

    afterAll(async () => {
      delete process.env.AIRLOCK_TEST_HOST_SECRET;
      await runner.close();
      await victim?.hits().catch(() => 0);
      await box?.container.remove({ force: true }).catch(() => {});
      await Promise.all(Object.values(decoys).map((d) => d.close()));
      report.save();
    });

    escapeChecks(
      () => ({
        ...attack,
        workspace: HERE,
        gateway,
        decoys,
        boxIp: box.ip,
        boxHits: () => box.hits(),
        victimIp: victim.ip,
        victimHits: () => victim.hits(),
        secret,
        leftovers: () => leftoverContainers(),
      }),
      report,
      area,
    );
  });
}

interface EscapeMode {
  label: string;
  /** Suffix for the report's area column (the default path has none). */
  area?: string;
  airlockBuilt: boolean;
  /** The agent image the attacker's is built on, and (python) whether its runtime runs the attack. */
  language: "node" | "python";
  /** How the attacker's sandbox must come to be. */
  path: AttackPath;
}

// The same attacks against every way a sandbox comes to be: an image airlock built gates itself with
// its own init, in a sandbox started for the run or one from the warm pool, or joins a gate the
// runner kept ready; any other image (derived from ours by plain docker build) is gated by a gate
// container; from each language's image.
escapeSuite({
  label: "an image airlock built, a sandbox started for the run, gated by its own init",
  airlockBuilt: true,
  language: "node",
  path: "new sandbox",
});
escapeSuite({
  label: "an image airlock built, a sandbox from the warm pool, gated by its own init at its claim",
  area: "warm pool",
  airlockBuilt: true,
  language: "node",
  path: "pooled sandbox",
});
escapeSuite({
  label: "an image airlock built, its container joined to a gate the runner kept ready",
  area: "ready gate",
  airlockBuilt: true,
  language: "node",
  path: "ready gate",
});
escapeSuite({
  label: "an image derived from ours by plain docker build, gated by a gate container",
  area: "gate container",
  airlockBuilt: false,
  language: "node",
  path: "new container",
});
// The same attacks from a Python agent: the Python image, its runtime's bootstrap, its init.
escapeSuite({
  label: "a Python agent in an image airlock built on its Python image, gated by its own init",
  area: "Python agent",
  airlockBuilt: true,
  language: "python",
  path: "new sandbox",
});
escapeSuite({
  label:
    "a Python agent in an image derived from airlock's Python image by plain docker build, gated by a gate container",
  area: "Python agent, gate container",
  airlockBuilt: false,
  language: "python",
  path: "new container",
});
