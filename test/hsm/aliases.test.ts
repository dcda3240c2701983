import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KmsService } from "../../src/kms/service.js";
import { type LifecycleService, MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { PARTITION } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";

const token = useTestToken("alias-test");
let t: LifecycleService;
let svc: KmsService;
beforeAll(async () => {
  t = await openLifecycleService([token], new MovableClock());
  svc = t.service;
});
afterAll(async () => {
  await t.close();
  token.remove();
});
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);
const ARN_PREFIX = `arn:aws:kms:${PARTITION.region}:${PARTITION.accountId}:`;

describe("aliases", () => {
  it("enforces AWS's names and limits", async () => {
    const keyId = (await svc.createKey({})).keyId;
    const cases: [string | undefined, string][] = [
      [undefined, "ValidationException"],
      ["", "ValidationException"],
      [`alias/${"a".repeat(251)}`, "ValidationException"], // 257 characters
      ["alias/has space", "ValidationException"],
      ["alias/ünï", "ValidationException"],
      ["noprefix", "InvalidAliasNameException"],
      ["alias/", "InvalidAliasNameException"],
      ["alias/with:colon", "InvalidAliasNameException"],
      ["alias/aws/s3", "InvalidAliasNameException"],
      ["alias/AWS/s3", "InvalidAliasNameException"],
    ];
    for (const [aliasName, expected] of cases) expect([aliasName, await code(svc.createAlias({ aliasName, targetKeyId: keyId }))]).toEqual([aliasName, expected]);
    expect(await code(svc.createAlias({ aliasName: `alias/${"a".repeat(250)}`, targetKeyId: keyId }))).toBe("ok");
    expect(await code(svc.createAlias({ aliasName: "alias/team/app_1-x", targetKeyId: keyId }))).toBe("ok");
    expect(await code(svc.createAlias({ aliasName: "alias/team/app_1-x", targetKeyId: keyId }))).toBe("AlreadyExistsException");
    // TargetKeyId takes a key id or key ARN, never an alias.
    expect(await code(svc.createAlias({ aliasName: "alias/other", targetKeyId: "alias/team/app_1-x" }))).toBe("NotFoundException");
    expect(await code(svc.createAlias({ aliasName: "alias/other", targetKeyId: `${ARN_PREFIX}key/${keyId}` }))).toBe("ok");
    expect(await code(svc.createAlias({ aliasName: "alias/nokey", targetKeyId: "11111111-1111-4111-8111-111111111111" }))).toBe("NotFoundException");
  });

  it("allows at most 50 aliases per key (LimitExceededException)", async () => {
    const keyId = (await svc.createKey({})).keyId;
    for (let i = 0; i < 50; i++) await svc.createAlias({ aliasName: `alias/many-${i}`, targetKeyId: keyId });
    expect(await code(svc.createAlias({ aliasName: "alias/many-50", targetKeyId: keyId }))).toBe("LimitExceededException");
    const listed = await svc.listAliases({ keyId, limit: 100 });
    expect(listed.aliases).toHaveLength(50);
  });

  it("resolves aliases (name and ARN) wherever AWS accepts them, and only there", async () => {
    const keyId = (await svc.createKey({})).keyId;
    await svc.createAlias({ aliasName: "alias/resolve", targetKeyId: keyId });
    const arn = `${ARN_PREFIX}alias/resolve`;
    expect((await svc.describeKey({ keyId: "alias/resolve" })).keyId).toBe(keyId);
    expect((await svc.describeKey({ keyId: arn })).keyId).toBe(keyId);
    const blob = (await svc.encrypt({ keyId: arn, plaintext: Buffer.from("x") })).ciphertextBlob;
    expect((await svc.decrypt({ ciphertextBlob: blob, keyId: "alias/resolve" })).keyId).toContain(keyId);
    expect((await svc.generateDataKey({ keyId: "alias/resolve", numberOfBytes: 8 })).keyId).toContain(keyId);
    expect((await svc.reEncrypt({ ciphertextBlob: blob, sourceKeyId: arn, destinationKeyId: "alias/resolve" })).keyId).toContain(keyId);
    expect(await code(svc.encrypt({ keyId: "alias/missing", plaintext: Buffer.from("x") }))).toBe("NotFoundException");
    for (const op of [
      () => svc.enableKey({ keyId: "alias/resolve" }),
      () => svc.scheduleKeyDeletion({ keyId: "alias/resolve" }),
      () => svc.tagResource({ keyId: arn, tags: [{ tagKey: "a", tagValue: "b" }] }),
      () => svc.enableKeyRotation({ keyId: "alias/resolve" }),
      () => svc.listAliases({ keyId: "alias/resolve" }),
    ]) {
      expect(await code(op())).toBe("NotFoundException");
    }
  });

  it("repoints under concurrent use: every call uses the old or the new key, never fails", async () => {
    const a = (await svc.createKey({})).keyId;
    const b = (await svc.createKey({})).keyId;
    const hmac = (await svc.createKey({ keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    await svc.createAlias({ aliasName: "alias/live", targetKeyId: a });
    const calls = Array.from({ length: 200 }, (_, i) =>
      svc.encrypt({ keyId: "alias/live", plaintext: Buffer.from(`m${i}`) }).then(async (r) => {
        const back = await svc.decrypt({ ciphertextBlob: r.ciphertextBlob });
        expect(back.plaintext.toString()).toBe(`m${i}`);
        return r.keyId;
      }),
    );
    const repoints = (async () => {
      for (let i = 0; i < 20; i++) {
        await svc.updateAlias({ aliasName: "alias/live", targetKeyId: i % 2 === 0 ? b : a });
        await new Promise((r) => setImmediate(r));
      }
    })();
    const [used] = await Promise.all([Promise.all(calls), repoints]);
    expect(new Set(used).size).toBeGreaterThanOrEqual(1);
    for (const k of used) expect([a, b].some((id) => k.endsWith(id))).toBe(true);
    expect((await svc.describeKey({ keyId: "alias/live" })).keyId).toBe(a); // 20 repoints: last one to a
    // Repointing to a key of another type is refused; a missing alias is NotFoundException.
    expect(await code(svc.updateAlias({ aliasName: "alias/live", targetKeyId: hmac }))).toBe("ValidationException");
    expect(await code(svc.updateAlias({ aliasName: "alias/none", targetKeyId: b }))).toBe("NotFoundException");
  });

  it("lists with pagination and a KeyId filter, and deletes", async () => {
    const keyId = (await svc.createKey({})).keyId;
    for (const n of ["c", "a", "b"]) await svc.createAlias({ aliasName: `alias/page-${n}`, targetKeyId: keyId });
    const first = await svc.listAliases({ keyId, limit: 2 });
    expect(first.aliases.map((a) => a.aliasName)).toEqual(["alias/page-a", "alias/page-b"]);
    expect(first.truncated).toBe(true);
    expect(first.aliases[0]).toMatchObject({ aliasArn: `${ARN_PREFIX}alias/page-a`, targetKeyId: keyId });
    const second = await svc.listAliases({ keyId, limit: 2, marker: first.nextMarker });
    expect(second.aliases.map((a) => a.aliasName)).toEqual(["alias/page-c"]);
    expect(second.truncated).toBe(false);
    expect(await code(svc.listAliases({ limit: 101 }))).toBe("ValidationException");
    expect(await code(svc.listAliases({ marker: "nope" }))).toBe("InvalidMarkerException");
    const all = await svc.listAliases({ limit: 100 });
    expect(all.aliases.length).toBeGreaterThan(3);
    await svc.deleteAlias({ aliasName: "alias/page-b" });
    expect(await code(svc.deleteAlias({ aliasName: "alias/page-b" }))).toBe("NotFoundException");
    expect((await svc.listAliases({ keyId })).aliases.map((a) => a.aliasName)).toEqual(["alias/page-a", "alias/page-c"]);
  });
});

describe("tags and descriptions", () => {
  it("applies AWS's limits", async () => {
    const keyId = (await svc.createKey({ tags: [{ tagKey: "t0", tagValue: "" }] })).keyId;
    expect(await code(svc.tagResource({ keyId, tags: [] }))).toBe("ValidationException");
    expect(await code(svc.tagResource({ keyId, tags: [{ tagKey: "aws:x", tagValue: "v" }] }))).toBe("TagException");
    expect(await code(svc.tagResource({ keyId, tags: [{ tagKey: "k".repeat(129), tagValue: "v" }] }))).toBe("TagException");
    expect(await code(svc.tagResource({ keyId, tags: [{ tagKey: "k", tagValue: "v".repeat(257) }] }))).toBe("TagException");
    const many = Array.from({ length: 49 }, (_, i) => ({ tagKey: `k${String(i).padStart(2, "0")}`, tagValue: "v" }));
    await svc.tagResource({ keyId, tags: many });
    expect(await code(svc.tagResource({ keyId, tags: [{ tagKey: "one-too-many", tagValue: "" }] }))).toBe("LimitExceededException");
    await svc.tagResource({ keyId, tags: [{ tagKey: "t0", tagValue: "overwritten" }] }); // overwriting adds nothing
    const first = await svc.listResourceTags({ keyId, limit: 20 });
    expect(first.tags).toHaveLength(20);
    expect(first.truncated).toBe(true);
    let total = first.tags.length;
    for (let m = first.nextMarker; m; ) {
      const next = await svc.listResourceTags({ keyId, limit: 20, marker: m });
      total += next.tags.length;
      m = next.nextMarker;
    }
    expect(total).toBe(50);
    await svc.untagResource({ keyId, tagKeys: ["t0", "not-there"] });
    expect((await svc.listResourceTags({ keyId })).tags).toHaveLength(49);
    expect(await code(svc.updateKeyDescription({ keyId, description: "x".repeat(8193) }))).toBe("ValidationException");
    await svc.updateKeyDescription({ keyId, description: "renamed" });
    expect((await svc.describeKey({ keyId })).description).toBe("renamed");
  });
});
