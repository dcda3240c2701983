import pkcs11js from "pkcs11js";
import { afterAll, describe, expect, it } from "vitest";
import { reconcile } from "../../src/kms/reconcile.js";
import { MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("deletion-test");
afterAll(() => token.remove());
const clock = new MovableClock();
const quietLog = { warn: () => undefined, error: () => undefined };

const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);

/** Labels of every p11kms object (secret, private, public) of one key on the token. */
function objectsOf(keyId: string): string[] {
  const inspect = new TokenInspector(token);
  return [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]
    .flatMap((cls) => inspect.objects(cls))
    .map((o) => o.label)
    .filter((l) => l.includes(keyId));
}

describe("ScheduleKeyDeletion / CancelKeyDeletion / the reaper", () => {
  it("validates the window (7–30, default 30) and returns the DeletionDate", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    expect(await code(t.service.scheduleKeyDeletion({ keyId, pendingWindowInDays: 6 }))).toBe("ValidationException");
    expect(await code(t.service.scheduleKeyDeletion({ keyId, pendingWindowInDays: 31 }))).toBe("ValidationException");
    expect(await code(t.service.scheduleKeyDeletion({ keyId: "alias/x" }))).toBe("NotFoundException");
    const res = await t.service.scheduleKeyDeletion({ keyId });
    expect(res).toMatchObject({ keyState: "PendingDeletion", pendingWindowInDays: 30 });
    expect(res.deletionDate.getTime()).toBe(clock.ms + 30 * 86_400_000);
    const m = await t.service.describeKey({ keyId });
    expect(m).toMatchObject({ keyState: "PendingDeletion", enabled: false, deletionDate: res.deletionDate });
    expect((await t.service.cancelKeyDeletion({ keyId })).keyId).toContain(keyId);
    const after = await t.service.describeKey({ keyId });
    expect(after.keyState).toBe("Disabled");
    expect(after.deletionDate).toBeUndefined();
    await t.close();
  });

  it("destroys every version and both halves of key pairs at the deadline, not a moment before", async () => {
    const t = await openLifecycleService([token], clock);
    const sym = (await t.service.createKey({})).keyId;
    for (let i = 0; i < 3; i++) await t.service.rotateKeyOnDemand({ keyId: sym });
    const pair = (await t.service.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    await t.service.createAlias({ aliasName: "alias/doomed", targetKeyId: sym });
    expect(objectsOf(sym)).toHaveLength(4);
    expect(objectsOf(pair)).toHaveLength(2);
    await t.service.scheduleKeyDeletion({ keyId: sym, pendingWindowInDays: 7 });
    await t.service.scheduleKeyDeletion({ keyId: pair, pendingWindowInDays: 8 });

    clock.advanceDays(7);
    clock.ms -= 1;
    expect((await t.jobs.tick()).deleted).toEqual([]);
    clock.ms += 1;
    expect((await t.jobs.tick()).deleted).toEqual([sym]);
    expect(objectsOf(sym)).toEqual([]);
    expect(await code(t.service.describeKey({ keyId: sym }))).toBe("NotFoundException");
    expect(await code(t.service.describeKey({ keyId: "alias/doomed" }))).toBe("NotFoundException");
    expect((await t.service.listKeys({})).keys.map((k) => k.keyId)).not.toContain(sym);
    expect(t.events.keyDeleted).toEqual([{ keyId: sym, keyStoreId: token.label, versions: 4 }]);

    clock.advanceDays(1);
    expect((await t.jobs.tick()).deleted).toEqual([pair]);
    expect(objectsOf(pair)).toEqual([]);
    expect((await t.jobs.tick()).deleted).toEqual([]); // idempotent
    expect((await t.metadata.getKey(sym))?.deletedAt).toBeInstanceOf(Date); // the tombstone stays
    await t.close();
  });

  it("reaps a deadline that passed while the service was down, at the first tick after start", async () => {
    let t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    const blob = (await t.service.encrypt({ keyId, plaintext: Buffer.from("x") })).ciphertextBlob;
    await t.service.scheduleKeyDeletion({ keyId, pendingWindowInDays: 7 });
    await t.close();

    clock.advanceDays(10); // "down" for ten days
    t = await openLifecycleService([token], clock);
    expect((await t.jobs.tick()).deleted).toEqual([keyId]);
    expect(objectsOf(keyId)).toEqual([]);
    expect(await code(t.service.decrypt({ ciphertextBlob: blob }))).toBe("InvalidCiphertextException");
    await t.close();
  });

  it("finishes a deletion a crash interrupted (tombstone written, objects still there) at start-up", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({})).keyId;
    await t.service.rotateKeyOnDemand({ keyId });
    await t.service.scheduleKeyDeletion({ keyId, pendingWindowInDays: 7 });
    clock.advanceDays(7);
    // The crash point: the record is a tombstone, the objects were never destroyed.
    expect(await t.metadata.markDeleted(keyId, clock.now())).toBe(true);
    expect(objectsOf(keyId)).toHaveLength(2);
    const report = await reconcile(t.metadata, t.deps.keyStores, quietLog);
    expect(report.finishedDeletions).toEqual([keyId]);
    expect(report.quarantined).toEqual([]);
    expect(objectsOf(keyId)).toEqual([]);
    await t.close();
  });

  it("never deletes a key whose deletion was cancelled, and defers while the key store is disconnected", async () => {
    const t = await openLifecycleService([token], clock);
    const kept = (await t.service.createKey({})).keyId;
    await t.service.scheduleKeyDeletion({ keyId: kept, pendingWindowInDays: 7 });
    await t.service.cancelKeyDeletion({ keyId: kept });
    const later = (await t.service.createKey({})).keyId;
    await t.service.scheduleKeyDeletion({ keyId: later, pendingWindowInDays: 7 });
    clock.advanceDays(8);
    await t.service.disconnectCustomKeyStore({ customKeyStoreId: token.label });
    const deferred = await t.jobs.tick();
    expect(deferred).toMatchObject({ deleted: [], deferred: [later] });
    expect(t.events.jobDeferred[0]).toMatchObject({ keyId: later, job: "deletion" });
    await t.service.connectCustomKeyStore({ customKeyStoreId: token.label });
    expect((await t.jobs.tick()).deleted).toEqual([later]);
    expect(objectsOf(kept)).toHaveLength(1);
    expect((await t.service.describeKey({ keyId: kept })).keyState).toBe("Disabled");
    await t.close();
  });
});
