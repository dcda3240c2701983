import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Caller } from "../../src/kms/caller.js";
import type { KmsService } from "../../src/kms/service.js";
import { SqliteMetadataStore } from "../../src/store/sqlite-metadata-store.js";
import { openService, PARTITION, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";

/** Authorization through the real service: SQLite, SoftHSM2, both callers' views of one service. */
const token = useTestToken("authz-test");
let t: TestService;
const ACCOUNT = PARTITION.accountId;
const ADMIN = `arn:aws:iam::${ACCOUNT}:root`;
const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
const BOB = `arn:aws:iam::${ACCOUNT}:user/bob`;
const as = (principal: string): KmsService => t.service.as({ principal, authMethod: "sigv4", requestId: "test" } satisfies Caller);
let admin: KmsService;
let alice: KmsService;
let bob: KmsService;

beforeAll(() => {
  t = openService(token);
  admin = as(ADMIN);
  alice = as(ALICE);
  bob = as(BOB);
});
afterAll(async () => {
  await t.metadata.close();
  await t.store.close();
  token.remove();
});

const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code ?? String(e));
const policy = (...Statement: unknown[]) => JSON.stringify({ Version: "2012-10-17", Statement });
const allow = (principal: string | string[], action: string | string[], extra: object = {}) => ({ Effect: "Allow", Principal: { AWS: principal }, Action: action, Resource: "*", ...extra });
const ADMIN_ALL = allow(ADMIN, "kms:*");

describe("key policies", () => {
  it("a new key gets the default policy: the administrator may do everything, anyone else nothing", async () => {
    const { keyId } = await admin.createKey({});
    const got = await admin.getKeyPolicy({ keyId });
    expect(got.policyName).toBe("default");
    expect(JSON.parse(got.policy)).toMatchObject({ Statement: [{ Effect: "Allow", Principal: { AWS: ADMIN }, Action: "kms:*" }] });
    expect(await admin.listKeyPolicies({ keyId })).toEqual({ policyNames: ["default"], truncated: false });
    const blob = (await admin.encrypt({ keyId, plaintext: Buffer.from("x") })).ciphertextBlob;
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("x") }))).toBe("AccessDeniedException");
    expect(await code(alice.decrypt({ ciphertextBlob: blob }))).toBe("AccessDeniedException");
    expect(await code(alice.describeKey({ keyId }))).toBe("AccessDeniedException");
    expect(await code(alice.getKeyPolicy({ keyId }))).toBe("AccessDeniedException");
    expect(await code(alice.scheduleKeyDeletion({ keyId }))).toBe("AccessDeniedException");
  });

  it("the AccessDeniedException message names the principal, the action and the key", async () => {
    const { keyId, arn } = await admin.createKey({});
    await expect(alice.encrypt({ keyId, plaintext: Buffer.from("x") })).rejects.toThrow(
      `User: ${ALICE} is not authorized to perform: kms:Encrypt on resource: ${arn} because no resource-based policy allows the kms:Encrypt action`,
    );
  });

  it("PutKeyPolicy takes effect at once, with encryption context conditions", async () => {
    const { keyId } = await admin.createKey({});
    await admin.putKeyPolicy({
      keyId,
      policy: policy(ADMIN_ALL, allow(ALICE, ["kms:Encrypt", "kms:Decrypt"], { Condition: { StringEquals: { "kms:EncryptionContext:dept": "it" } } })),
    });
    const ctx = { dept: "it" };
    const blob = (await alice.encrypt({ keyId, plaintext: Buffer.from("hi"), encryptionContext: ctx })).ciphertextBlob;
    expect((await alice.decrypt({ ciphertextBlob: blob, encryptionContext: ctx })).plaintext.toString()).toBe("hi");
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("hi"), encryptionContext: { dept: "hr" } }))).toBe("AccessDeniedException");
    expect(await code(alice.decrypt({ ciphertextBlob: blob }))).toBe("AccessDeniedException"); // authorized before decrypting
    expect(await code(bob.decrypt({ ciphertextBlob: blob, encryptionContext: ctx }))).toBe("AccessDeniedException");
  });

  it("explicit Deny wins, even for the administrator", async () => {
    const { keyId } = await admin.createKey({});
    await admin.putKeyPolicy({ keyId, policy: policy(ADMIN_ALL, { Effect: "Deny", Principal: { AWS: ADMIN }, Action: "kms:Encrypt", Resource: "*" }) });
    expect(await code(admin.encrypt({ keyId, plaintext: Buffer.from("x") }))).toBe("AccessDeniedException");
    expect(await code(admin.describeKey({ keyId }))).toBe("ok");
  });

  it("refuses a policy that would lock the caller out, unless BypassPolicyLockoutSafetyCheck", async () => {
    const { keyId } = await admin.createKey({});
    const lockout = policy(allow(ALICE, "kms:*"));
    expect(await code(admin.putKeyPolicy({ keyId, policy: lockout }))).toBe("MalformedPolicyDocumentException");
    expect(await code(admin.createKey({ policy: lockout }))).toBe("MalformedPolicyDocumentException");
    expect(await code(admin.putKeyPolicy({ keyId, policy: lockout, bypassPolicyLockoutSafetyCheck: true }))).toBe("ok");
    expect(await code(admin.describeKey({ keyId }))).toBe("AccessDeniedException"); // locked out, as asked
    expect(await code(alice.describeKey({ keyId }))).toBe("ok");
  });

  it("CreateKey accepts a Policy; a malformed one creates no key", async () => {
    const before = (await admin.listKeys({})).keys.length;
    expect(await code(admin.createKey({ policy: "{not json" }))).toBe("MalformedPolicyDocumentException");
    expect(await code(admin.createKey({ policy: policy({ Effect: "Allow", Principal: "*", Action: "s3:*", Resource: "*" }) }))).toBe("MalformedPolicyDocumentException");
    expect((await admin.listKeys({})).keys.length).toBe(before);
    const { keyId } = await admin.createKey({ policy: policy(ADMIN_ALL, allow(BOB, "kms:DescribeKey")) });
    expect(await code(bob.describeKey({ keyId }))).toBe("ok");
    expect(await code(bob.encrypt({ keyId, plaintext: Buffer.from("x") }))).toBe("AccessDeniedException");
  });

  it("validates PolicyName and the 32 KB limit", async () => {
    const { keyId } = await admin.createKey({});
    expect(await code(admin.getKeyPolicy({ keyId, policyName: "other" }))).toBe("NotFoundException");
    expect(await code(admin.putKeyPolicy({ keyId, policy: "" }))).toBe("ValidationException");
    const big = policy({ ...ADMIN_ALL, Sid: "x".repeat(33 * 1024) });
    expect(await code(admin.putKeyPolicy({ keyId, policy: big }))).toBe("ValidationException");
  });

  it("account-level operations: the administrator only (unless configured)", async () => {
    expect(await code(alice.createKey({}))).toBe("AccessDeniedException");
    expect(await code(alice.listKeys({}))).toBe("AccessDeniedException");
    expect(await code(alice.listAliases({}))).toBe("AccessDeniedException");
    expect(await code(alice.generateRandom({ numberOfBytes: 8 }))).toBe("AccessDeniedException");
    expect(await code(admin.generateRandom({ numberOfBytes: 8 }))).toBe("ok");
  });

  it("ReEncrypt needs ReEncryptFrom on the source and ReEncryptTo on the destination", async () => {
    const src = (await admin.createKey({ policy: policy(ADMIN_ALL, allow(ALICE, ["kms:ReEncryptFrom"])) })).keyId;
    const dst = (await admin.createKey({})).keyId;
    const blob = (await admin.encrypt({ keyId: src, plaintext: Buffer.from("x") })).ciphertextBlob;
    expect(await code(alice.reEncrypt({ ciphertextBlob: blob, destinationKeyId: dst }))).toBe("AccessDeniedException");
    await admin.putKeyPolicy({ keyId: dst, policy: policy(ADMIN_ALL, allow(ALICE, "kms:ReEncryptTo")) });
    expect(await code(alice.reEncrypt({ ciphertextBlob: blob, destinationKeyId: dst }))).toBe("ok");
    expect(await code(alice.decrypt({ ciphertextBlob: blob }))).toBe("AccessDeniedException");
  });

  it("kms:SigningAlgorithm and kms:EncryptionAlgorithm conditions see the request's algorithm", async () => {
    const sign = (await admin.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    await admin.putKeyPolicy({ keyId: sign, policy: policy(ADMIN_ALL, allow(ALICE, "kms:Sign", { Condition: { StringEquals: { "kms:SigningAlgorithm": "ECDSA_SHA_256" } } })) });
    const msg = { keyId: sign, message: Buffer.from("m") };
    expect(await code(alice.sign({ ...msg, signingAlgorithm: "ECDSA_SHA_256" }))).toBe("ok");
    expect(await code(alice.sign({ ...msg, signingAlgorithm: "ECDSA_SHA_384" }))).toBe("AccessDeniedException");
    const sym = (await admin.createKey({ policy: policy(ADMIN_ALL, allow(ALICE, "kms:Encrypt", { Condition: { StringEquals: { "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT" } } })) })).keyId;
    expect(await code(alice.encrypt({ keyId: sym, plaintext: Buffer.from("x") }))).toBe("ok");
  });

  it("policies survive a restart of the store (read back and parsed again)", async () => {
    const { keyId } = await admin.createKey({ policy: policy(ADMIN_ALL, allow(BOB, "kms:GetKeyPolicy")) });
    const reopened = new SqliteMetadataStore(`${token.dir}/p11kms.db`);
    try {
      expect(JSON.parse((await reopened.getKeyPolicy(keyId))!)).toMatchObject({ Statement: [{}, { Principal: { AWS: BOB } }] });
    } finally {
      await reopened.close();
    }
  });
});

describe("grants", () => {
  it("CreateGrant allows the grantee at once; ListGrants shows it; RetireGrant by the retiring principal ends it", async () => {
    const { keyId, arn } = await admin.createKey({});
    const { grantId, grantToken } = await admin.createGrant({ keyId, granteePrincipal: ALICE, retiringPrincipal: BOB, operations: ["Encrypt", "Decrypt"], name: "app-1" });
    expect(grantId).toMatch(/^[0-9a-f]{64}$/);
    const blob = (await alice.encrypt({ keyId, plaintext: Buffer.from("g"), grantTokens: [grantToken] })).ciphertextBlob;
    expect((await alice.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("g");
    expect(await code(alice.describeKey({ keyId }))).toBe("AccessDeniedException"); // not a granted operation
    const list = await admin.listGrants({ keyId });
    expect(list.grants).toEqual([
      expect.objectContaining({ keyId: arn, grantId, name: "app-1", granteePrincipal: ALICE, retiringPrincipal: BOB, issuingAccount: ADMIN, operations: ["Encrypt", "Decrypt"] }),
    ]);
    expect((await admin.listRetirableGrants({ retiringPrincipal: BOB })).grants.map((g) => g.grantId)).toContain(grantId);
    expect(await code(alice.retireGrant({ keyId, grantId }))).toBe("AccessDeniedException"); // grantee without RetireGrant
    await bob.retireGrant({ grantToken });
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("g") }))).toBe("AccessDeniedException");
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("g"), grantTokens: [grantToken] }))).toBe("InvalidGrantTokenException");
    expect((await admin.listGrants({ keyId })).grants).toEqual([]);
  });

  it("constraints: EncryptionContextSubset / Equals apply to cryptographic operations only", async () => {
    const { keyId } = await admin.createKey({});
    await admin.createGrant({ keyId, granteePrincipal: ALICE, operations: ["Encrypt", "DescribeKey"], constraints: { encryptionContextSubset: { dept: "it" } } });
    await admin.createGrant({ keyId, granteePrincipal: BOB, operations: ["Encrypt"], constraints: { encryptionContextEquals: { dept: "it" } } });
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionContext: { dept: "it", more: "1" } }))).toBe("ok");
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("x") }))).toBe("AccessDeniedException");
    expect(await code(alice.describeKey({ keyId }))).toBe("ok");
    expect(await code(bob.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionContext: { dept: "it" } }))).toBe("ok");
    expect(await code(bob.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionContext: { dept: "it", more: "1" } }))).toBe("AccessDeniedException");
  });

  it("refuses what AWS refuses", async () => {
    const { keyId } = await admin.createKey({});
    const sign = (await admin.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const g = (o: object) => code(admin.createGrant({ keyId, granteePrincipal: ALICE, operations: ["Encrypt"], ...o }));
    expect(await g({ granteePrincipal: undefined })).toBe("ValidationException");
    expect(await g({ granteePrincipal: "has space" })).toBe("ValidationException");
    expect(await g({ operations: [] })).toBe("ValidationException");
    expect(await g({ operations: ["Encrypt", "Bogus"] })).toBe("ValidationException");
    expect(await g({ operations: ["Sign"] })).toBe("ValidationException"); // not an operation of a symmetric key
    expect(await g({ name: "bad name!" })).toBe("ValidationException");
    expect(await g({ granteePrincipal: BOB, operations: ["Encrypt", "CreateGrant"], constraints: { encryptionContextSubset: {} } })).toBe("ok"); // empty = none
    expect(await code(admin.createGrant({ keyId: sign, granteePrincipal: ALICE, operations: ["Sign"], constraints: { encryptionContextSubset: { a: "b" } } }))).toBe("ValidationException");
    expect(await g({ dryRun: true })).toBe("DryRunOperationException");
    expect(await code(alice.createGrant({ keyId, granteePrincipal: ALICE, operations: ["Encrypt"] }))).toBe("AccessDeniedException");
    expect(await code(admin.encrypt({ keyId, plaintext: Buffer.from("x"), grantTokens: ["not-a-token"] }))).toBe("InvalidGrantTokenException");
    expect(await code(admin.retireGrant({ keyId, grantId: "nothex" }))).toBe("InvalidGrantIdException");
    expect(await code(admin.retireGrant({ keyId, grantId: "0".repeat(64) }))).toBe("NotFoundException");
    expect(await code(admin.retireGrant({ grantId: "0".repeat(64) }))).toBe("ValidationException");
    expect(await code(admin.revokeGrant({ keyId, grantId: "0".repeat(64) }))).toBe("NotFoundException");
  });

  it("a grant with CreateGrant lets the grantee create narrower grants only", async () => {
    const { keyId } = await admin.createKey({});
    await admin.createGrant({ keyId, granteePrincipal: ALICE, operations: ["Encrypt", "Decrypt", "CreateGrant"], constraints: { encryptionContextSubset: { dept: "it" } } });
    expect(await code(alice.createGrant({ keyId, granteePrincipal: BOB, operations: ["Decrypt"], constraints: { encryptionContextSubset: { dept: "it", app: "x" } } }))).toBe("ok");
    expect(await code(alice.createGrant({ keyId, granteePrincipal: BOB, operations: ["Decrypt"] }))).toBe("AccessDeniedException"); // looser
    expect(await code(alice.createGrant({ keyId, granteePrincipal: BOB, operations: ["GenerateDataKey"], constraints: { encryptionContextSubset: { dept: "it" } } }))).toBe("AccessDeniedException");
    expect(await code(bob.decrypt({ ciphertextBlob: (await admin.encrypt({ keyId, plaintext: Buffer.from("z"), encryptionContext: { dept: "it", app: "x" } })).ciphertextBlob, encryptionContext: { dept: "it", app: "x" } }))).toBe("ok");
  });

  it("RevokeGrant needs kms:RevokeGrant; an explicit Deny overrides a grant", async () => {
    const { keyId } = await admin.createKey({});
    const { grantId } = await admin.createGrant({ keyId, granteePrincipal: ALICE, operations: ["Encrypt"] });
    expect(await code(alice.revokeGrant({ keyId, grantId }))).toBe("AccessDeniedException");
    await admin.putKeyPolicy({ keyId, policy: policy(ADMIN_ALL, { Effect: "Deny", Principal: { AWS: ALICE }, Action: "kms:*", Resource: "*" }) });
    expect(await code(alice.encrypt({ keyId, plaintext: Buffer.from("x") }))).toBe("AccessDeniedException");
    await admin.revokeGrant({ keyId, grantId });
    expect((await admin.listGrants({ keyId })).grants).toEqual([]);
  });

  it("pages ListGrants by grant id", async () => {
    const { keyId } = await admin.createKey({});
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await admin.createGrant({ keyId, granteePrincipal: BOB, operations: ["Decrypt"] })).grantId);
    const first = await admin.listGrants({ keyId, limit: 3 });
    expect(first.truncated).toBe(true);
    const second = await admin.listGrants({ keyId, limit: 3, marker: first.nextMarker });
    expect([...first.grants, ...second.grants].map((g) => g.grantId)).toEqual([...ids].sort());
    expect(await code(admin.listGrants({ keyId, limit: 101 }))).toBe("ValidationException");
    expect((await admin.listGrants({ keyId, grantId: ids[2] })).grants.map((g) => g.grantId)).toEqual([ids[2]]);
  });
});
