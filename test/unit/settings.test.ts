/** The environment knobs (runner/settings.ts): defaults, values, and bad values named with their fix. */
import { describe, expect, it } from "vitest";
import { RunOptionsError } from "../../runner/errors.js";
import {
  brokersStateDir,
  gatePoolSetting,
  kubernetesSettings,
  loopbackSetting,
  rabbitmqAmqpPort,
  stateDir,
  warmPoolSetting,
} from "../../runner/settings.js";
import { createRunner } from "../../runner/runner.js";

describe("settings from the environment", () => {
  it("has the documented defaults", () => {
    expect(warmPoolSetting({})).toBe(0);
    expect(gatePoolSetting({})).toBe(1);
    expect(rabbitmqAmqpPort({})).toBe(5672);
    expect(loopbackSetting({})).toBeUndefined();
    expect(kubernetesSettings({})).toEqual({});
  });

  it("reads the state folders in their order", () => {
    expect(stateDir({ AIRLOCK_STATE_DIR: "/srv/a" })).toBe("/srv/a");
    expect(stateDir({ XDG_STATE_HOME: "/x" })).toBe("/x/airlock");
    expect(brokersStateDir({ AIRLOCK_STATE_DIR: "/srv/a" })).toBe("/srv/a/brokers");
    expect(brokersStateDir({ AIRLOCK_BROKERS_STATE: "/b", AIRLOCK_STATE_DIR: "/srv/a" })).toBe("/b");
  });

  it("takes the values given", () => {
    expect(warmPoolSetting({ AIRLOCK_POOL: "4" })).toBe(4);
    expect(gatePoolSetting({ AIRLOCK_GATE_POOL: "0" })).toBe(0);
    expect(loopbackSetting({ AIRLOCK_LOOPBACK: "forwarder" })).toBe("forwarder");
    expect(kubernetesSettings({ AIRLOCK_K8S_NAMESPACE: "agents", AIRLOCK_K8S_CONTEXT: "" })).toEqual({
      namespace: "agents",
    });
  });

  it("refuses a bad value with the variable's name and the fix", () => {
    const bad: [() => unknown, RegExp][] = [
      [() => warmPoolSetting({ AIRLOCK_POOL: "four" }), /AIRLOCK_POOL=four is not a whole number/],
      [() => gatePoolSetting({ AIRLOCK_GATE_POOL: "-1" }), /AIRLOCK_GATE_POOL=-1/],
      [() => loopbackSetting({ AIRLOCK_LOOPBACK: "userspace" }), /AIRLOCK_LOOPBACK=userspace/],
      [
        () => rabbitmqAmqpPort({ AIRLOCK_RABBITMQ_AMQP_PORT: "70000" }),
        /AIRLOCK_RABBITMQ_AMQP_PORT=70000 is not a port/,
      ],
    ];
    for (const [read, message] of bad) {
      let error: unknown;
      try {
        read();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(RunOptionsError);
      expect((error as RunOptionsError).message).toMatch(message);
      expect((error as RunOptionsError).fix).toMatch(/set|unset/);
    }
  });

  it("are read when a runner's Docker backend is made, not when the module loads", () => {
    process.env.AIRLOCK_POOL = "many";
    try {
      const runner = createRunner({ reapOrphans: false });
      expect(() => runner.dockerBackend).toThrow(/AIRLOCK_POOL=many/);
    } finally {
      delete process.env.AIRLOCK_POOL;
    }
  });
});
