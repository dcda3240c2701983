import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cleanup } from "./cleanup.js";
import { PROJECT_ROOT, SOFTHSM_MODULE } from "./paths.js";

export interface BenchToken {
  readonly dir: string;
  /** The SOFTHSM2_CONF of this token only: each process under test sees its own token directory. */
  readonly conf: string;
  readonly label: string;
  readonly pinFile: string;
  readonly modulePath: string;
}

/** A fresh SoftHSM2 token in a temp dir (removed by `cleanup`), made by the script `make run` uses. */
export function createToken(cleanup: Cleanup, label: string): BenchToken {
  const dir = mkdtempSync(join(tmpdir(), `p11kms-bench-${label}-`));
  cleanup.removeDir(dir);
  const conf = execFileSync(join(PROJECT_ROOT, "softhsm/init-token.sh"), [dir, label], { encoding: "utf8" }).trim();
  const pinFile = join(dir, "pin");
  return { dir, conf, label, pinFile, modulePath: SOFTHSM_MODULE };
}
