import { existsSync, readFileSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";

/**
 * Where the lock of one token lives (src/daemon/state-locks.ts takes it): a file that names the token as
 * every process using it sees it, or, when the module keeps its tokens somewhere no file tells,
 * `unlocked` with the reason.
 *
 * SoftHSM2: its token directory (`directories.tokendir` of the configuration file the module reads) holds
 * one subdirectory per token, and the daemon selects a token by label, so the pair (token directory, label)
 * is the token's identity. The lock is `<tokendir>/.p11kms-token-<label>.lock` (label URI-encoded): a file,
 * which SoftHSM2 ignores (it scans subdirectories only). Two configurations that spell the directory
 * differently (a symlink) meet at the same file.
 *
 * Other modules (vendor HSMs): no file identity; the token is not locked (the caller logs it). A lock keyed
 * by module and token serial in a lock directory would only hold on one host, which the database and audit
 * locks already cover for a daemon on that host.
 */
export type TokenLockFile = { readonly file: string } | { readonly unlocked: string };

export function tokenLockFile(modulePath: string, tokenLabel: string, env: NodeJS.ProcessEnv): TokenLockFile {
  if (!/softhsm/i.test(basename(modulePath))) return { unlocked: `module ${modulePath} keeps its tokens where no file identifies them` };
  const conf = softhsmConfigPath(env);
  let text: string;
  try {
    text = readFileSync(conf, "utf8");
  } catch (err) {
    return { unlocked: `cannot read the SoftHSM2 configuration ${conf}: ${(err as Error).message}` };
  }
  const tokendir = text
    .split("\n")
    .map((l) => /^\s*directories\.tokendir\s*=\s*(.*?)\s*$/.exec(l)?.[1])
    .find((v) => v !== undefined && v !== "");
  if (tokendir === undefined) return { unlocked: `the SoftHSM2 configuration ${conf} names no directories.tokendir` };
  let dir: string;
  try {
    dir = realpathSync(tokendir);
  } catch (err) {
    return { unlocked: `the SoftHSM2 token directory ${tokendir} cannot be resolved: ${(err as Error).message}` };
  }
  return { file: join(dir, `.p11kms-token-${encodeURIComponent(tokenLabel)}.lock`) };
}

/** The configuration file SoftHSM2 (2.6) reads: SOFTHSM2_CONF, else the user's, else the system's. */
function softhsmConfigPath(env: NodeJS.ProcessEnv): string {
  if (env.SOFTHSM2_CONF) return env.SOFTHSM2_CONF;
  const user = join(env.HOME ?? homedir(), ".config/softhsm2/softhsm2.conf");
  return existsSync(user) ? user : "/etc/softhsm/softhsm2.conf";
}
