import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KmsService } from "../../src/kms/service.js";
import type { KeyRecord } from "../../src/kms/types.js";
import { type LifecycleService, MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { addTestToken, useTestToken } from "../helpers/softhsm.js";

/**
 * The state machine, every state × every operation, on real keys in a real token: each cell gets a key of
 * its own, put into the state, then the operation runs once. The expectations are AWS's key-state table.
 */
const token = useTestToken("states-a");
const second = addTestToken(token, "states-b");
let t: LifecycleService;
let svc: KmsService;
beforeAll(async () => {
  t = await openLifecycleService([token, second], new MovableClock());
  svc = t.service;
});
afterAll(async () => {
  await t.close();
  token.remove();
});

const STATES = ["Enabled", "Disabled", "PendingDeletion", "PendingImport", "Unavailable", "StoreDisconnected", "Creating"] as const;
type State = (typeof STATES)[number];

interface Cell {
  keyId: string;
  blob?: Buffer;
  healthy: string;
  n: number;
}
type Op = (c: Cell) => Promise<unknown>;

const text = Buffer.from("state machine");
const OPERATIONS: Record<string, { spec?: string; run: Op }> = {
  Encrypt: { run: (c) => svc.encrypt({ keyId: c.keyId, plaintext: text }) },
  Decrypt: { run: (c) => svc.decrypt({ keyId: c.keyId, ciphertextBlob: c.blob }) },
  ReEncrypt: { run: (c) => svc.reEncrypt({ ciphertextBlob: c.blob, destinationKeyId: c.keyId }) },
  GenerateDataKey: { run: (c) => svc.generateDataKey({ keyId: c.keyId, keySpec: "AES_256" }) },
  GenerateDataKeyWithoutPlaintext: { run: (c) => svc.generateDataKeyWithoutPlaintext({ keyId: c.keyId, numberOfBytes: 16 }) },
  GenerateDataKeyPair: { run: (c) => svc.generateDataKeyPair({ keyId: c.keyId, keyPairSpec: "ECC_NIST_P256" }) },
  Sign: { spec: "ECC_NIST_P256", run: (c) => svc.sign({ keyId: c.keyId, message: text, signingAlgorithm: "ECDSA_SHA_256" }) },
  GetPublicKey: { spec: "ECC_NIST_P256", run: (c) => svc.getPublicKey({ keyId: c.keyId }) },
  GenerateMac: { spec: "HMAC_256", run: (c) => svc.generateMac({ keyId: c.keyId, message: text, macAlgorithm: "HMAC_SHA_256" }) },
  DescribeKey: { run: (c) => svc.describeKey({ keyId: c.keyId }) },
  EnableKey: { run: (c) => svc.enableKey({ keyId: c.keyId }) },
  DisableKey: { run: (c) => svc.disableKey({ keyId: c.keyId }) },
  ScheduleKeyDeletion: { run: (c) => svc.scheduleKeyDeletion({ keyId: c.keyId, pendingWindowInDays: 7 }) },
  CancelKeyDeletion: { run: (c) => svc.cancelKeyDeletion({ keyId: c.keyId }) },
  UpdateKeyDescription: { run: (c) => svc.updateKeyDescription({ keyId: c.keyId, description: "new" }) },
  TagResource: { run: (c) => svc.tagResource({ keyId: c.keyId, tags: [{ tagKey: "k", tagValue: "v" }] }) },
  UntagResource: { run: (c) => svc.untagResource({ keyId: c.keyId, tagKeys: ["k"] }) },
  ListResourceTags: { run: (c) => svc.listResourceTags({ keyId: c.keyId }) },
  CreateAlias: { run: (c) => svc.createAlias({ aliasName: `alias/create-${c.n}`, targetKeyId: c.keyId }) },
  UpdateAlias: {
    run: async (c) => {
      await svc.createAlias({ aliasName: `alias/update-${c.n}`, targetKeyId: c.healthy });
      return svc.updateAlias({ aliasName: `alias/update-${c.n}`, targetKeyId: c.keyId });
    },
  },
  ListAliases: { run: (c) => svc.listAliases({ keyId: c.keyId }) },
  EnableKeyRotation: { run: (c) => svc.enableKeyRotation({ keyId: c.keyId }) },
  DisableKeyRotation: { run: (c) => svc.disableKeyRotation({ keyId: c.keyId }) },
  GetKeyRotationStatus: { run: (c) => svc.getKeyRotationStatus({ keyId: c.keyId }) },
  RotateKeyOnDemand: { run: (c) => svc.rotateKeyOnDemand({ keyId: c.keyId }) },
  ListKeyRotations: { run: (c) => svc.listKeyRotations({ keyId: c.keyId }) },
};

const CRYPTO = { Enabled: "ok", Disabled: "DisabledException", PendingDeletion: "KMSInvalidStateException", PendingImport: "KMSInvalidStateException", Unavailable: "KMSInvalidStateException", StoreDisconnected: "KMSInvalidStateException", Creating: "NotFoundException" };
const ALL_OK = { Enabled: "ok", Disabled: "ok", PendingDeletion: "ok", PendingImport: "ok", Unavailable: "ok", StoreDisconnected: "ok", Creating: "NotFoundException" };
const NOT_PENDING_DELETION = { ...ALL_OK, PendingDeletion: "KMSInvalidStateException" };
const STATE_CHANGE = { ...ALL_OK, PendingDeletion: "KMSInvalidStateException", PendingImport: "KMSInvalidStateException", Unavailable: "KMSInvalidStateException", StoreDisconnected: "KMSInvalidStateException" };
const ROTATION = { ...STATE_CHANGE, Disabled: "DisabledException", PendingImport: "UnsupportedOperationException" };

const EXPECTED: Record<string, Record<State, string>> = {
  Encrypt: CRYPTO,
  Decrypt: CRYPTO,
  ReEncrypt: CRYPTO,
  GenerateDataKey: CRYPTO,
  GenerateDataKeyWithoutPlaintext: CRYPTO,
  GenerateDataKeyPair: CRYPTO,
  Sign: CRYPTO,
  GetPublicKey: CRYPTO,
  GenerateMac: CRYPTO,
  DescribeKey: ALL_OK,
  EnableKey: STATE_CHANGE,
  DisableKey: STATE_CHANGE,
  ScheduleKeyDeletion: NOT_PENDING_DELETION,
  CancelKeyDeletion: {
    ...ALL_OK,
    Enabled: "KMSInvalidStateException",
    Disabled: "KMSInvalidStateException",
    PendingImport: "KMSInvalidStateException",
    Unavailable: "KMSInvalidStateException",
    StoreDisconnected: "KMSInvalidStateException",
  },
  UpdateKeyDescription: NOT_PENDING_DELETION,
  TagResource: NOT_PENDING_DELETION,
  UntagResource: NOT_PENDING_DELETION,
  ListResourceTags: ALL_OK,
  CreateAlias: NOT_PENDING_DELETION,
  UpdateAlias: NOT_PENDING_DELETION,
  ListAliases: ALL_OK,
  EnableKeyRotation: ROTATION,
  DisableKeyRotation: ROTATION,
  GetKeyRotationStatus: { ...ALL_OK, PendingImport: "UnsupportedOperationException" },
  RotateKeyOnDemand: ROTATION,
  ListKeyRotations: ALL_OK,
};

let counter = 0;

/** A key of `spec` in `state` (StoreDisconnected keys live in the second store, disconnected later). */
async function keyIn(state: State, spec = "SYMMETRIC_DEFAULT", healthy: string): Promise<Cell> {
  const n = counter++;
  if (state === "Creating") {
    const keyId = `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
    const record: KeyRecord = {
      keyId,
      keyStoreId: token.label,
      description: "",
      keySpec: "SYMMETRIC_DEFAULT",
      keyUsage: "ENCRYPT_DECRYPT",
      origin: "AWS_KMS",
      keyState: "Creating",
      creationDate: new Date(),
      currentVersion: 1,
    };
    await t.metadata.insertKey({ record, tags: [] });
    return { keyId, blob: (await svc.encrypt({ keyId: healthy, plaintext: text })).ciphertextBlob, healthy, n };
  }
  const customKeyStoreId = state === "StoreDisconnected" ? second.label : undefined;
  const keyId = (await svc.createKey({ keySpec: spec, customKeyStoreId })).keyId;
  const blob = spec === "SYMMETRIC_DEFAULT" ? (await svc.encrypt({ keyId, plaintext: text })).ciphertextBlob : undefined;
  if (state === "Disabled") await svc.disableKey({ keyId });
  if (state === "PendingDeletion") await svc.scheduleKeyDeletion({ keyId });
  // Not reachable through the API (imported keys, lost material): set as reconciliation or BYOK would.
  if (state === "PendingImport" || state === "Unavailable") await t.metadata.transitionKey(keyId, "Enabled", state, undefined);
  return { keyId, blob, healthy, n };
}

describe("key states × operations (AWS's key-state table)", () => {
  it("gives every operation the AWS result in every state", async () => {
    const healthy = (await svc.createKey({})).keyId;
    const cells: { op: string; state: State; cell: Cell }[] = [];
    for (const [op, { spec }] of Object.entries(OPERATIONS)) {
      for (const state of STATES) cells.push({ op, state, cell: await keyIn(state, spec, healthy) });
    }
    await svc.disconnectCustomKeyStore({ customKeyStoreId: second.label });
    const actual: Record<string, Record<string, string>> = {};
    for (const { op, state, cell } of cells) {
      const outcome = await OPERATIONS[op]!.run(cell).then(
        () => "ok",
        (e: { code?: string; message?: string }) => e.code ?? `crash: ${e.message}`,
      );
      (actual[op] ??= {})[state] = outcome;
    }
    await svc.connectCustomKeyStore({ customKeyStoreId: second.label });
    expect(actual).toEqual(EXPECTED);
  });

  it("raises the pending-deletion alarm for every cryptographic use of a key pending deletion", () => {
    const ops = t.events.pendingDeletionUse.map((e) => e.operation).sort();
    expect(ops).toEqual(
      ["Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKey", "GenerateDataKeyPair", "GenerateMac", "GetPublicKey", "ReEncrypt", "Sign"].sort(),
    );
  });
});
