import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const SOFTHSM_MODULE = process.env.P11KMS_TEST_MODULE ?? "/usr/lib/softhsm/libsofthsm2.so";
const INIT_SCRIPT = resolve(import.meta.dirname, "../../softhsm/init-token.sh");

export interface TestToken {
  readonly dir: string;
  readonly conf: string;
  readonly label: string;
  readonly pin: string;
  readonly modulePath: string;
  remove(): void;
}

/** A fresh SoftHSM2 token in a temp dir, made with the same script `make run` uses. */
export function createTestToken(label = "p11kms-test"): TestToken {
  const dir = mkdtempSync(join(tmpdir(), "p11kms-hsm-"));
  const conf = execFileSync(INIT_SCRIPT, [dir, label], { encoding: "utf8" }).trim();
  return {
    dir,
    conf,
    label,
    pin: readFileSync(join(dir, "pin"), "utf8").trim(),
    modulePath: SOFTHSM_MODULE,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Creates a token and points this process's SoftHSM2 at it (must run before the module is loaded). */
export function useTestToken(label?: string): TestToken {
  const token = createTestToken(label);
  process.env.SOFTHSM2_CONF = token.conf;
  return token;
}

/**
 * A second token beside `token`, in the same SoftHSM2 token directory (so one process sees both). Create
 * it before the module is loaded: SoftHSM2 scans the directory only at initialisation.
 */
export function addTestToken(token: TestToken, label: string): TestToken {
  execFileSync(INIT_SCRIPT, [token.dir, label], { encoding: "utf8" });
  return { ...token, label, remove: () => undefined };
}
