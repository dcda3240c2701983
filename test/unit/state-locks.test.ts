import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { stateLockTargets } from "../../src/daemon/state-locks.js";
import { tokenLockFile } from "../../src/hsm/runtime/token-identity.js";
import { createLogger } from "../../src/observability/logger.js";

const dir = realpathSync(mkdtempSync(join(tmpdir(), "p11kms-statelock-")));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, "tokens"));
symlinkSync(join(dir, "tokens"), join(dir, "tokens-link"));
const conf = join(dir, "softhsm2.conf");
writeFileSync(conf, "# test\ndirectories.tokendir = " + join(dir, "tokens-link") + "\nobjectstore.backend = file\n");
const SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so";
const log = createLogger("silent");
const uri = (label: string, module = SOFTHSM) => `pkcs11:token=${label}?module-path=${module}&pin-source=file:pin`;

describe("tokenLockFile: a token's identity", () => {
  it("SoftHSM2: a file in the token directory of the configuration the module reads, named by the label", () => {
    expect(tokenLockFile(SOFTHSM, "kms a/b", { SOFTHSM2_CONF: conf })).toEqual({ file: join(dir, "tokens", ".p11kms-token-kms%20a%2Fb.lock") });
  });

  it("no identity for a vendor module, an unreadable configuration or one without a token directory", () => {
    expect(tokenLockFile("/opt/vendor/libCryptoki2.so", "t", { SOFTHSM2_CONF: conf })).toMatchObject({ unlocked: expect.stringContaining("libCryptoki2") });
    expect(tokenLockFile(SOFTHSM, "t", { SOFTHSM2_CONF: join(dir, "missing.conf") })).toMatchObject({ unlocked: expect.stringContaining("missing.conf") });
    writeFileSync(join(dir, "empty.conf"), "log.level = ERROR\n");
    expect(tokenLockFile(SOFTHSM, "t", { SOFTHSM2_CONF: join(dir, "empty.conf") })).toMatchObject({ unlocked: expect.stringContaining("directories.tokendir") });
  });
});

describe("stateLockTargets: what a daemon locks", () => {
  const config = (extra: Record<string, unknown>) =>
    configSchema.parse({
      storage: { sqlitePath: join(dir, "db", "p11kms.db") },
      audit: { file: join(dir, "audit", "audit.jsonl") },
      keyStores: [{ id: "a", uri: uri("one") }],
      ...extra,
    });

  it("the database, the audit directory (created if missing) and each token, in that order", () => {
    mkdirSync(join(dir, "db"), { recursive: true });
    expect(stateLockTargets(config({}), log, { SOFTHSM2_CONF: conf })).toEqual([
      { state: `the metadata database ${join(dir, "db", "p11kms.db")}`, lockFile: join(dir, "db", "p11kms.db.lock") },
      { state: `the audit directory ${join(dir, "audit")}`, lockFile: join(dir, "audit", ".p11kms.lock") },
      { state: `the token 'one' of key store 'a' (module ${SOFTHSM})`, lockFile: join(dir, "tokens", ".p11kms-token-one.lock") },
    ]);
  });

  it("two key stores on one token share its lock; a vendor token, a disabled audit log and an in-memory database have none", () => {
    const c = config({
      storage: { sqlitePath: ":memory:" },
      audit: { enabled: false },
      keyStores: [
        { id: "a", uri: uri("one") },
        { id: "b", uri: uri("one") },
        { id: "c", uri: uri("two") },
        { id: "v", uri: uri("hsm", "/opt/vendor/libCryptoki2.so") },
      ],
    });
    expect(stateLockTargets(c, log, { SOFTHSM2_CONF: conf }).map((t) => t.lockFile)).toEqual([
      join(dir, "tokens", ".p11kms-token-one.lock"),
      join(dir, "tokens", ".p11kms-token-two.lock"),
    ]);
  });
});
