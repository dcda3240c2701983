import { createPublicKey, verify } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_SIGNING_KEY_LABEL } from "../../src/hsm/ops/audit-signing-key.js";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("audit-key");
let store: Pkcs11KeyStore;
let inspect: TokenInspector;

const open = () => Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2 });

beforeAll(() => {
  store = open();
  inspect = new TokenInspector(token);
});
afterAll(async () => {
  await store.close();
  token.remove();
});

describe("the audit signing key in the token", () => {
  it("is created on first use as a sensitive, non-extractable, sign-only ECDSA P-256 token key; its signatures verify offline", async () => {
    const signer = store.auditSigner();
    const [a, b] = await Promise.all([signer.publicKey(), signer.publicKey()]); // concurrent first uses: one key
    expect(a).toEqual(b);
    const privates = inspect.objects(pkcs11js.CKO_PRIVATE_KEY).filter((o) => o.label === AUDIT_SIGNING_KEY_LABEL);
    expect(privates).toHaveLength(1);
    const h = privates[0]!.handle;
    expect(inspect.bool(h, pkcs11js.CKA_TOKEN)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_SENSITIVE)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
    expect(inspect.bool(h, pkcs11js.CKA_NEVER_EXTRACTABLE)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_SIGN)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_DECRYPT)).toBe(false);
    expect(inspect.rv(() => inspect.mod.C_GetAttributeValue(inspect.session, h, [{ type: pkcs11js.CKA_VALUE }]))).toBe(0x11); // CKR_ATTRIBUTE_SENSITIVE

    const key = createPublicKey({ key: a, format: "der", type: "spki" });
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const data = Buffer.from("digest payload");
    const sig = await signer.sign(data);
    expect(sig).toHaveLength(64);
    expect(verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, sig)).toBe(true);
    expect(verify("sha256", Buffer.from("other"), { key, dsaEncoding: "ieee-p1363" }, sig)).toBe(false);
  });

  it("is found again by label after a restart (no second key), and is not taken for a KMS key", async () => {
    const before = await store.auditSigner().publicKey();
    await store.close();
    store = open();
    expect(await store.auditSigner().publicKey()).toEqual(before);
    expect(inspect.objects(pkcs11js.CKO_PRIVATE_KEY).filter((o) => o.label === AUDIT_SIGNING_KEY_LABEL)).toHaveLength(1);
    expect(await store.inventory()).toEqual([]);
  });
});
