import { Child, jsonLine } from "../lib/child.js";
import { ForeignCpu } from "../lib/cpu.js";
import type { Cleanup } from "../lib/cleanup.js";
import { childScript } from "../lib/paths.js";
import type { BenchToken } from "../lib/token.js";
import type { RawMode, RawResult, RawSpec } from "../children/raw-pkcs11.js";

/**
 * Runs the in-process PKCS#11 loop (bench/children/raw-pkcs11.ts) once per mode, each in a fresh child
 * process on `token` — never in this process, which must not load a PKCS#11 module of its own.
 */
export async function runRaw(
  cleanup: Cleanup,
  token: BenchToken,
  mode: RawMode,
  measureMs: number,
): Promise<RawResult & { otherCpu: number }> {
  const spec: RawSpec = {
    mode,
    modulePath: token.modulePath,
    tokenLabel: token.label,
    pinFile: token.pinFile,
    plaintextBytes: 4096,
    // As many as the daemon's session pool holds by default (keyStores[].maxSessions = 8).
    sessions: 8,
    warmupMs: 1000,
    measureMs,
  };
  const args = [childScript("raw-pkcs11"), JSON.stringify(spec)];
  const env = { ...process.env, SOFTHSM2_CONF: token.conf };
  const child = Child.start(cleanup, `raw pkcs11 (${mode})`, process.execPath, args, env);
  const cpu = ForeignCpu.start([child.pid]);
  const parse = (line: string) => jsonLine(line)?.raw as RawResult | undefined;
  const result = await child.waitFor(parse, measureMs + 30_000, "the result line");
  await child.exited;
  return { ...result, otherCpu: cpu.stop() };
}
