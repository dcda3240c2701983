import { afterAll, describe, expect, it } from "vitest";
import { keyLabel, QUARANTINE_PREFIX } from "../../src/hsm/objects/templates.js";
import { reconcile } from "../../src/kms/reconcile.js";
import type { KeyRecord } from "../../src/kms/types.js";
import { openService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("reconcile-test");
afterAll(() => token.remove());

function creatingRecord(keyId: string): KeyRecord {
  return {
    keyId,
    keyStoreId: "default",
    description: "",
    keySpec: "SYMMETRIC_DEFAULT",
    keyUsage: "ENCRYPT_DECRYPT",
    origin: "AWS_KMS",
    keyState: "Creating",
    creationDate: new Date(),
    currentVersion: 1,
  };
}

describe("start-up reconciliation between the token and the metadata store", () => {
  it("repairs every state a crash can leave, and leaves healthy keys alone", async () => {
    const { service, store, metadata, stores } = openService(token);
    const healthy = (await service.createKey({})).keyId;
    const healthyBlob = (await service.encrypt({ keyId: healthy, plaintext: Buffer.from("still here") })).ciphertextBlob;

    // Crash after the object was generated but before the record turned Enabled.
    const halfMade = "11111111-1111-4111-8111-111111111111";
    await metadata.insertKey({ record: creatingRecord(halfMade), tags: [] });
    await store.generateAesKey({ keyId: halfMade, version: 1 });
    // Crash before the object was generated.
    const noObject = "22222222-2222-4222-8222-222222222222";
    await metadata.insertKey({ record: creatingRecord(noObject), tags: [] });
    // An object no record knows (e.g. the database was restored from an older backup).
    const orphan = "33333333-3333-4333-8333-333333333333";
    await store.generateAesKey({ keyId: orphan, version: 1 });
    // A record whose material vanished from the token.
    const lost = (await service.createKey({})).keyId;
    await store.destroyKey({ keyId: lost, version: 1 });

    const warnings: string[] = [];
    const errors: string[] = [];
    const report = await reconcile(metadata, stores, {
      warn: (_o, m) => warnings.push(m),
      error: (_o, m) => errors.push(m),
    });

    expect(report.abortedCreations.sort()).toEqual([halfMade, noObject].sort());
    expect(report.quarantined).toEqual([{ keyId: orphan, version: 1 }]);
    expect(report.missingMaterial).toEqual([lost]);
    expect(errors).toEqual(["KEY MATERIAL MISSING from the token: key marked Unavailable"]);
    expect(warnings.length).toBe(3);

    expect(await metadata.getKey(halfMade)).toBeUndefined();
    expect(await metadata.getKey(noObject)).toBeUndefined();
    const labels = new TokenInspector(token).secretKeys().map((k) => k.label);
    expect(labels).not.toContain(keyLabel(halfMade, 1));
    expect(labels).toContain(QUARANTINE_PREFIX + keyLabel(orphan, 1));
    expect(labels).not.toContain(keyLabel(orphan, 1));

    expect((await service.describeKey({ keyId: lost })).keyState).toBe("Unavailable");
    await expect(service.encrypt({ keyId: lost, plaintext: Buffer.from("x") })).rejects.toMatchObject({
      code: "KMSInvalidStateException",
    });
    expect((await service.decrypt({ ciphertextBlob: healthyBlob })).plaintext.toString()).toBe("still here");
    expect((await service.describeKey({ keyId: healthy })).keyState).toBe("Enabled");

    // A second pass finds nothing left to do.
    const again = await reconcile(metadata, stores, { warn: () => undefined, error: () => undefined });
    expect(again).toEqual({ abortedCreations: [], quarantined: [], missingMaterial: [], finishedDeletions: [] });
    await metadata.close();
    await store.close();
  });
});
