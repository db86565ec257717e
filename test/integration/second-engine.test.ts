/**
 * Two Docker engines on one host, one runner each: a runner keeps what outlives a run per engine (its
 * Docker backend), so a runner on a second engine finds or builds its own network and images there,
 * never the first engine's answer. The second engine is a real dockerd started here (its own socket,
 * data root and managed containerd; a bridge of its own with NAT for its image builds, since it does
 * not touch the host's iptables itself), and stopped and removed afterwards.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import Docker from "dockerode";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunner, definePolicy, type Runner } from "../../runner/index.js";
import { cleanup, dockerClient, ensureImages } from "../../runner/internal.js";
import { packagePath } from "../../runner/paths.js";
import { AGENTS } from "./helpers.js";

const BRIDGE = "al2test0";
const SUBNET = "10.213.7.0/24";
const DOCKERD = ["/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"].find((p) => existsSync(p));
// Root (it adds a bridge and host rules) on a machine whose engine is local.
const canRun = process.getuid?.() === 0 && DOCKERD !== undefined && !process.env.DOCKER_HOST;
const CLI = packagePath("dist", "runner", "cli", "main.js");

let dir: string;
let daemon: ChildProcess | undefined;
let second: Docker;
const hostRules: string[][] = [
  ["-t", "nat", "POSTROUTING", "-s", SUBNET, "!", "-o", BRIDGE, "-j", "MASQUERADE"],
  ["-t", "filter", "DOCKER-USER", "-i", BRIDGE, "-j", "ACCEPT"],
  ["-t", "filter", "DOCKER-USER", "-o", BRIDGE, "-j", "ACCEPT"],
];
const iptables = (op: "-I" | "-D", [t, table, chain, ...rule]: string[]) =>
  execa("iptables", ["--wait", "10", t!, table!, op, chain!, ...rule], { reject: false });

async function startSecondEngine(): Promise<void> {
  // Short paths: the engine's sockets live under them.
  dir = await mkdtemp("/tmp/al2-");
  await execa("ip", ["link", "add", BRIDGE, "type", "bridge"]);
  await execa("ip", ["addr", "add", "10.213.7.1/24", "dev", BRIDGE]);
  await execa("ip", ["link", "set", BRIDGE, "up"]);
  for (const rule of hostRules) await iptables("-I", rule);
  const socket = join(dir, "sock");
  daemon = spawn(
    DOCKERD!,
    [
      "--data-root",
      join(dir, "data"),
      "--exec-root",
      join(dir, "x"),
      "--pidfile",
      join(dir, "pid"),
      "-H",
      `unix://${socket}`,
      "--bridge",
      BRIDGE,
      "--iptables=false",
      "--ip6tables=false",
    ],
    { stdio: "ignore" },
  );
  second = new Docker({ socketPath: socket });
  for (let i = 0; i < 120; i++) {
    if (
      await second.ping().then(
        () => true,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await second.ping();
  // No registry here: the base image comes over from the first engine, as `docker save | docker load` would bring it.
  const { base } = await ensureImages(dockerClient());
  await execa("sh", ["-c", `docker save ${base} | docker -H unix://${socket} load`]);
}

async function stopSecondEngine(): Promise<void> {
  // Its airlock network (and so its bridge and host hooks) goes with it, whatever the tests got to.
  if (second) await cleanup(second, { all: true, network: true }).catch(() => undefined);
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon!.once("exit", r));
    daemon.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (daemon.exitCode === null) daemon.kill("SIGKILL");
  }
  for (const rule of hostRules) await iptables("-D", rule);
  await execa("ip", ["link", "del", BRIDGE], { reject: false });
  if (dir) await rm(dir, { recursive: true, force: true });
}

const PROBES = JSON.stringify([{ id: "redis", kind: "tcp", host: "localhost", port: 6379, send: "PING\r\n" }]);
const policy = definePolicy({
  name: "two-engines",
  network: { allowedEndpoints: ["localhost:6379"] },
  env: { set: { PROBES } },
});

async function probeRedis(runner: Runner) {
  const out = join(await mkdtemp("/tmp/airlock-it-"), "out");
  const result = await runner.runAgent({ agent: join(AGENTS, "probe.ts"), workingDir: AGENTS, policy, outputDir: out });
  expect(result.status, result.error ?? result.stderr).toBe("succeeded");
  return (result.returnValue as { results: Record<string, { outcome: string; reply?: string }> }).results.redis;
}

const bridgeOf = async (docker: Docker) => {
  const info = await docker.getNetwork("airlock").inspect();
  return {
    id: info.Id as string,
    bridge: (info.Options as Record<string, string>)["com.docker.network.bridge.name"],
    subnet: info.IPAM?.Config?.[0]?.Subnet as string,
  };
};

describe.skipIf(!canRun)("a runner per engine, two engines on one host", () => {
  let first: Runner;
  let other: Runner;

  beforeAll(async () => {
    await startSecondEngine();
    first = createRunner({ gatePoolSize: 0 });
    other = createRunner({ docker: second, gatePoolSize: 0 });
  }, 600_000);

  afterAll(async () => {
    await Promise.all([first?.close(), other?.close()]);
    await stopSecondEngine();
  }, 120_000);

  // The first engine's own bridge is none of the second's business (a dockerd started with --bridge=none deletes docker0).
  const hadDocker0 = existsSync("/sys/class/net/docker0");
  afterAll(() => {
    if (hadDocker0) expect(existsSync("/sys/class/net/docker0"), "the first engine's docker0").toBe(true);
  });

  it("the second engine's runner gets its own network (its own bridge on the host) and its own images, and its gate lets the agent reach the host's loopback", async () => {
    // The first engine's runner goes first, so anything it kept for the process would be found by the second.
    expect(await probeRedis(first)).toMatchObject({ outcome: "connected", reply: expect.stringMatching(/^-NOAUTH/) });
    const firstNet = await bridgeOf(dockerClient());

    expect(await probeRedis(other)).toMatchObject({ outcome: "connected", reply: expect.stringMatching(/^-NOAUTH/) });
    const otherNet = await bridgeOf(second);
    expect(otherNet.bridge).not.toBe(firstNet.bridge);
    expect(otherNet.bridge).toMatch(/^airlock\d+$/);
    expect(otherNet.subnet).not.toBe(firstNet.subnet);
    // The images the second runner used are the second engine's: built there, by airlock (the trust record has their IDs).
    const images = await other.images();
    for (const tag of [images.gate, images.agent])
      expect((await second.getImage(tag).inspect()).Id).toBe(tag === images.gate ? images.ids.gate : images.ids.agent);
    // The first engine's network is the one it had.
    expect((await bridgeOf(dockerClient())).id).toBe(firstNet.id);
  });

  it("cleanup --all on the second engine removes its network and leaves the first engine's host rules working", async () => {
    const cleaned = await execa("node", [CLI, "cleanup", "--all"], {
      env: { DOCKER_HOST: `unix://${join(dir, "sock")}` },
      reject: false,
    });
    expect(cleaned.exitCode, cleaned.stderr).toBe(0);
    expect(cleaned.stdout).toContain("network airlock");
    await expect(second.getNetwork("airlock").inspect()).rejects.toMatchObject({ statusCode: 404 });
    // The shared chains stay (the first engine's bridge still jumps to them), with their fixed rules.
    const input = await execa("iptables", ["--wait", "10", "-S", "AIRLOCK-INPUT"]);
    expect(input.stdout).toContain("-j AIRLOCK-AGENTS-IN");
    expect(input.stdout).toMatch(/-A AIRLOCK-INPUT -j DROP$/m);
    expect(await probeRedis(first)).toMatchObject({ outcome: "connected", reply: expect.stringMatching(/^-NOAUTH/) });
  });
});
