import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
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
    ],
  },
});
