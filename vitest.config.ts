import { defineConfig } from "vitest/config";

// Unit tests run in threads. Tests that load a PKCS#11 module run in forked processes, one per file:
// a module is initialised once per process and reads SOFTHSM2_CONF only then, so each file gets a fresh
// process and its own token.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], pool: "threads" } },
      {
        test: {
          name: "hsm",
          include: ["test/hsm/**/*.test.ts"],
          pool: "forks",
          isolate: true,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          pool: "forks",
          isolate: true,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
