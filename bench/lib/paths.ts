import { fileURLToPath } from "node:url";

/**
 * The project root. Compiled, this file is dist-bench/bench/lib/paths.js — one level deeper than its
 * source bench/lib/paths.ts (which is what runs under a TS loader or in an editor).
 */
const UP = import.meta.url.includes("/dist-bench/") ? "../../../" : "../../";
export const PROJECT_ROOT = fileURLToPath(new URL(UP, import.meta.url));

export const SOFTHSM_MODULE = process.env.P11KMS_BENCH_MODULE ?? "/usr/lib/softhsm/libsofthsm2.so";

/** A compiled child-process entry point: bench/children/NAME.ts, run with node as its own process. */
export function childScript(name: string): string {
  return fileURLToPath(new URL(`../children/${name}.js`, import.meta.url));
}
