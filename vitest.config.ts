import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // The property tests run thousands of cases: fine on an idle machine in a second, but CI
          // must not depend on an idle machine.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          // Two cores: run integration files one at a time, tests within a file as written.
          fileParallelism: false,
        },
      },
      {
        test: {
          // A real cluster (scripts/k8s/test.sh brings it up): the examples and the escape suite with
          // every agent a Pod. Not part of a plain `vitest run`: it is run by name.
          name: "kubernetes",
          include: [
            "test/kubernetes/**/*.test.ts",
            "test/integration/examples.test.ts",
            "test/integration/python-sdk.test.ts",
            "test/integration/security/https-names.test.ts",
            "test/integration/security/https-terminating.test.ts",
          ],
          globalSetup: ["test/kubernetes/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // A cluster that enforces NetworkPolicy (Cilium; scripts/k8s/netpol.sh): run by name only.
          name: "netpol",
          include: ["test/netpol/**/*.test.ts"],
          globalSetup: ["test/kubernetes/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
