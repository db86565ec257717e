import { describe, expect, it } from "vitest";
import { agentSpec, gateSpec, type AgentSpecInput } from "../../runner/backends/docker/container-spec.js";

const input: AgentSpecInput = {
  name: "airlock-x",
  image: "airlock/agent:abc",
  network: { mode: "gate-container", gateId: "gateid" },
  user: { uid: 1000, gid: 1000 },
  env: ["A=1"],
  cmd: ["/opt/agent/run/agent.mjs"],
  workspaceBinds: ["/home/me/project:/workspace:ro", "/dev/null:/workspace/.env:ro"],
  output: { limits: { bytes: 64 * 1024 * 1024, entries: 1000 }, keeper: "keeperid" },
  bundleDir: "/tmp/airlock-1/bundle",
  hostsFile: "/tmp/airlock-1/hosts",
  resolvConf: "/tmp/airlock-1/resolv.conf",
  memoryBytes: 256 * 1024 * 1024,
  cpus: 0.5,
  pids: 128,
  maxFileBytes: 10 * 1024 * 1024,
  labels: { "dev.airlock.managed": "true" },
};
const agent = agentSpec(input);

describe("agent container", () => {
  const host = agent.HostConfig!;
  it("runs as the given non-root user with no capabilities and no way to gain any", () => {
    expect(agent.User).toBe("1000:1000");
    expect(host.CapDrop).toEqual(["ALL"]);
    expect(host.CapAdd).toBeUndefined();
    expect(host.SecurityOpt).toContain("no-new-privileges:true");
    expect(host.Privileged).toBe(false);
  });

  it("has a read-only root, a small /tmp, and the policy's limits without swap", () => {
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.Tmpfs).toEqual({ "/tmp": expect.stringContaining("size=64m") });
    // /output's tmpfs is charged to the agent: its size on top of the policy's memory.
    expect(host.Memory).toBe(256 * 1024 * 1024 + 64 * 1024 * 1024);
    expect(host.MemorySwap).toBe(host.Memory);
    expect(host.NanoCpus).toBe(5e8);
    expect(host.PidsLimit).toBe(128);
    expect(host.Ulimits).toEqual([{ Name: "fsize", Soft: 10 * 1024 * 1024, Hard: 10 * 1024 * 1024 }]);
  });

  it("mounts the workspace read-only, the keeper's /output volume read-write, no host folder for /output, and never the Docker socket", () => {
    expect(host.Binds).toContain("/home/me/project:/workspace:ro");
    expect(host.VolumesFrom).toEqual(["keeperid:rw"]);
    expect((host.Binds ?? []).some((b) => b.endsWith(":/output:rw"))).toBe(false);
    expect(host.Binds).toContain("/tmp/airlock-1/bundle:/opt/agent/run:ro");
    expect(host.Binds).toContain("/tmp/airlock-1/hosts:/etc/hosts:ro");
    expect(host.Binds).toContain("/tmp/airlock-1/resolv.conf:/etc/resolv.conf:ro");
    expect((host.Binds ?? []).join(" ")).not.toContain("docker.sock");
  });

  it("joins the gate's network namespace and runs under an init that forwards signals", () => {
    expect(host.NetworkMode).toBe("container:gateid");
    expect(host.Init).toBe(true);
    expect(agent.Labels).toEqual({ "dev.airlock.managed": "true" });
  });
});

describe("sandbox: the self-gated agent container (the agent image)", () => {
  const gated = agentSpec({
    ...input,
    network: { mode: "gated", network: "airlock" },
    env: ["AIRLOCK_SLOT_USER=1000:1000"],
    cmd: ["node", "/opt/airlock/dist/standby.js"],
  });
  const host = gated.HostConfig!;
  it("starts the init as root with only the capabilities it needs to apply the rules and hand over uid:gid, and the runtime on standby", () => {
    expect(gated.User).toBe("0:0");
    expect(gated.Entrypoint).toEqual(["/opt/airlock/init"]);
    // The agent's command line comes with the start line; the container only knows the runtime to keep on standby.
    expect(gated.Cmd).toEqual(["node", "/opt/airlock/dist/standby.js"]);
    expect(gated.Env).toEqual(["AIRLOCK_SLOT_USER=1000:1000"]);
    expect(host.CapDrop).toEqual(["ALL"]);
    expect(host.CapAdd).toEqual(["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "SETPCAP", "KILL"]);
    expect(host.SecurityOpt).toContain("no-new-privileges:true");
    expect(host.Privileged).toBe(false);
  });

  it("has its own namespace on the airlock bridge, hardened like a gate's, and takes its rules on stdin", () => {
    expect(host.NetworkMode).toBe("airlock");
    expect(host.Init).toBe(false); // its own tini, started without NET_ADMIN
    expect(host.Sysctls).toMatchObject({
      "net.ipv6.conf.all.disable_ipv6": "1",
      "net.ipv4.conf.all.route_localnet": "1",
      "net.ipv4.ping_group_range": "1 0",
    });
    expect(gated).toMatchObject({ OpenStdin: true, StdinOnce: true, AttachStdin: true });
    expect(host.ReadonlyRootfs).toBe(true);
    // The init's tini and supervisor come on top of the policy's limit.
    expect(host.PidsLimit).toBe(130);
  });

  it("without a network: no init, no capabilities", () => {
    const none = agentSpec({ ...input, network: { mode: "none" }, entrypoint: [] });
    expect(none.HostConfig!.NetworkMode).toBe("none");
    expect(none.HostConfig!.CapAdd).toBeUndefined();
    expect(none.User).toBe("1000:1000");
    expect(none.Entrypoint).toEqual([]);
    expect(none.OpenStdin).toBe(false);
  });
});

describe("gate container", () => {
  const gate = gateSpec({
    name: "g",
    image: "airlock/gate:1",
    network: "airlock",
    idleSeconds: 30,
    labels: { a: "b" },
    output: { limits: { bytes: 1 << 30, entries: 10_000 }, user: { uid: 10001, gid: 10001 } },
  });
  it("gets only what it needs to apply rules and then give up its privileges", () => {
    expect(gate.HostConfig!.CapDrop).toEqual(["ALL"]);
    expect(gate.HostConfig!.CapAdd).toEqual(["NET_ADMIN", "NET_RAW", "SETUID", "SETGID", "SETPCAP"]);
    expect(gate.HostConfig!.ReadonlyRootfs).toBe(true);
    expect(gate.HostConfig!.Sysctls).toMatchObject({
      "net.ipv6.conf.all.disable_ipv6": "1",
      "net.ipv4.conf.all.route_localnet": "1",
      "net.ipv4.ping_group_range": "1 0",
    });
    expect(gate.Env).toEqual(["AIRLOCK_GATE_IDLE_SECONDS=30"]);
    expect(gate.HostConfig!.AutoRemove).toBe(true);
  });

  it("holds an /output volume (a tmpfs of the given limits, owned by the agent's user) for the agent that joins it, removed with it", () => {
    const [mount] = gate.HostConfig!.Mounts as unknown as {
      Type: string;
      Target: string;
      Source?: string;
      VolumeOptions: { DriverConfig: { Options: { o: string } } };
    }[];
    expect(mount).toMatchObject({ Type: "volume", Target: "/output" });
    expect(mount!.Source).toBeUndefined();
    expect(mount!.VolumeOptions.DriverConfig.Options.o).toBe(
      "size=1073741824,nr_inodes=10001,uid=10001,gid=10001,mode=0755,nosuid,nodev,noexec",
    );
  });
});
