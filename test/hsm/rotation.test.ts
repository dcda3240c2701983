import { afterAll, describe, expect, it } from "vitest";
import { keyLabel, QUARANTINE_PREFIX } from "../../src/hsm/objects/templates.js";
import { parseBlob } from "../../src/kms/ciphertext.js";
import { reconcile } from "../../src/kms/reconcile.js";
import { MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("rotation-test");
afterAll(() => token.remove());
const clock = new MovableClock();
const DAY = 86_400_000;
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);

describe("key rotation", () => {
  it("rotates across many versions: new encryptions use the newest, every old blob still decrypts", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    await t.service.createAlias({ aliasName: "alias/rotating", targetKeyId: keyId });
    const blobs: { blob: Buffer; text: string }[] = [];
    for (let v = 1; v <= 12; v++) {
      const text = `secret of version ${v}`;
      const blob = (await t.service.encrypt({ keyId: "alias/rotating", plaintext: Buffer.from(text), encryptionContext: { v: String(v) } })).ciphertextBlob;
      blobs.push({ blob, text });
      if (v < 12) await t.service.rotateKeyOnDemand({ keyId });
    }
    expect((await t.metadata.getKey(keyId))?.currentVersion).toBe(12);
    for (const [i, { blob, text }] of blobs.entries()) {
      const out = await t.service.decrypt({ ciphertextBlob: blob, encryptionContext: { v: String(i + 1) } });
      expect(out.plaintext.toString()).toBe(text);
    }
    // Each blob names the version that sealed it: the newest at the time.
    expect(blobs.map((b) => parseBlob(b.blob).version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const rotations = await t.service.listKeyRotations({ keyId, limit: 5 });
    expect(rotations.rotations).toHaveLength(5);
    expect(rotations.rotations[0]).toMatchObject({ rotationType: "ON_DEMAND" });
    const rest = await t.service.listKeyRotations({ keyId, marker: rotations.nextMarker });
    expect(rest.rotations).toHaveLength(6);
    expect(rest.truncated).toBe(false);
    expect(await code(t.service.listKeyRotations({ keyId, marker: "bogus" }))).toBe("InvalidMarkerException");
    await t.close();
  });

  it("runs scheduled rotations from the durable schedule, exactly once per due date, across a restart", async () => {
    let t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    expect(await t.service.getKeyRotationStatus({ keyId })).toMatchObject({ keyRotationEnabled: false });
    expect(await code(t.service.enableKeyRotation({ keyId, rotationPeriodInDays: 89 }))).toBe("ValidationException");
    expect(await code(t.service.enableKeyRotation({ keyId, rotationPeriodInDays: 2561 }))).toBe("ValidationException");
    await t.service.enableKeyRotation({ keyId, rotationPeriodInDays: 90 });
    const status = await t.service.getKeyRotationStatus({ keyId });
    expect(status).toMatchObject({ keyRotationEnabled: true, rotationPeriodInDays: 90 });
    expect(status.nextRotationDate?.getTime()).toBe(clock.ms + 90 * DAY);
    const old = (await t.service.encrypt({ keyId, plaintext: Buffer.from("v1") })).ciphertextBlob;

    clock.advanceDays(89);
    expect((await t.jobs.tick()).rotated).toEqual([]);
    clock.advanceDays(1);
    expect((await t.jobs.tick()).rotated).toEqual([{ keyId, version: 2 }]);
    expect((await t.jobs.tick()).rotated).toEqual([]); // idempotent: the schedule moved in the same write
    expect((await t.service.getKeyRotationStatus({ keyId })).nextRotationDate?.getTime()).toBe(clock.ms + 90 * DAY);
    await t.close();

    clock.advanceDays(200); // down past the next due date: one rotation at start, then a fresh period
    t = await openLifecycleService([token], clock);
    expect((await t.jobs.tick()).rotated).toEqual([{ keyId, version: 3 }]);
    expect((await t.jobs.tick()).rotated).toEqual([]);
    expect((await t.service.getKeyRotationStatus({ keyId })).nextRotationDate?.getTime()).toBe(clock.ms + 90 * DAY);
    expect((await t.service.decrypt({ ciphertextBlob: old })).plaintext.toString()).toBe("v1");
    const rotations = (await t.service.listKeyRotations({ keyId })).rotations.map((r) => r.rotationType);
    expect(rotations).toEqual(["AUTOMATIC", "AUTOMATIC"]);

    // A disabled key is not rotated; once enabled again, the overdue rotation happens.
    await t.service.disableKey({ keyId });
    clock.advanceDays(100);
    expect((await t.jobs.tick()).rotated).toEqual([]);
    await t.service.enableKey({ keyId });
    expect((await t.jobs.tick()).rotated).toEqual([{ keyId, version: 4 }]);
    await t.service.disableKeyRotation({ keyId });
    clock.advanceDays(1000);
    expect((await t.jobs.tick()).rotated).toEqual([]);
    await t.close();
  });

  it("refuses rotation of asymmetric and HMAC keys (UnsupportedOperationException), as AWS", async () => {
    const t = await openLifecycleService([token], clock);
    const ecc = (await t.service.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const hmac = (await t.service.createKey({ keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    for (const keyId of [ecc, hmac]) {
      expect(await code(t.service.enableKeyRotation({ keyId }))).toBe("UnsupportedOperationException");
      expect(await code(t.service.rotateKeyOnDemand({ keyId }))).toBe("UnsupportedOperationException");
      expect(await code(t.service.getKeyRotationStatus({ keyId }))).toBe("UnsupportedOperationException");
    }
    await t.close();
  });

  it("caps on-demand rotations at 25 per key (LimitExceededException)", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    for (let i = 0; i < 25; i++) await t.service.rotateKeyOnDemand({ keyId });
    expect(await code(t.service.rotateKeyOnDemand({ keyId }))).toBe("LimitExceededException");
    expect((await t.metadata.getKey(keyId))?.currentVersion).toBe(26);
    await t.close();
  });

  it("serialises concurrent rotations of one key: every one gets its own version", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    await Promise.all(Array.from({ length: 8 }, () => t.service.rotateKeyOnDemand({ keyId })));
    const versions = (await t.service.listKeyRotations({ keyId })).rotations.length;
    expect(versions).toBe(8);
    expect((await t.metadata.getKey(keyId))?.currentVersion).toBe(9);
    await t.close();
  });

  it("a crash between the new object and its record leaves an object reconciliation quarantines", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    const store = t.deps.keyStores.get(token.label)!;
    await store.generateAesKey({ keyId, version: 2 }); // the crash point: generated, never recorded
    const report = await reconcile(t.metadata, t.deps.keyStores, { warn: () => undefined, error: () => undefined });
    expect(report.quarantined).toEqual([{ keyId, version: 2 }]);
    expect(new TokenInspector(token).secretKeys().map((k) => k.label)).toContain(QUARANTINE_PREFIX + keyLabel(keyId, 2));
    await t.service.rotateKeyOnDemand({ keyId }); // the next rotation makes a fresh version 2
    const blob = (await t.service.encrypt({ keyId, plaintext: Buffer.from("after") })).ciphertextBlob;
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("after");
    await t.close();
  });
});
