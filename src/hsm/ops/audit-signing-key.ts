import { createHash } from "node:crypto";
import pkcs11js from "pkcs11js";
import type { AuditSigner } from "../../audit/signer.js";
import type { Device } from "../runtime/device.js";
import { CURVES } from "../objects/mechanisms.js";
import { readSpki } from "../objects/public-key.js";

/** Label of both halves of the audit signing key pair (not a KMS key label, so reconciliation ignores it). */
export const AUDIT_SIGNING_KEY_LABEL = "p11kms-audit-signing-key";

/**
 * The audit log's signing key on a PKCS#11 token: an ECDSA P-256 pair of token objects, the private half
 * private, sensitive, non-extractable and sign-only. Created on first use, found by label afterwards; a
 * digest is hashed here and the hash signed with CKM_ECDSA (every token that does ECDSA has it).
 */
export class Pkcs11AuditSigner implements AuditSigner {
  private pair?: Promise<{ privateKey: pkcs11js.Handle; spki: Buffer }>;

  /**
   * `scanned` answers from the key store's start-up scan (one pass over the token): with 10,000 keys each
   * SoftHSM2 search is another 0.2–0.3 s pass, so the pair is searched for only when the scan did not see it.
   */
  constructor(
    private readonly device: Device,
    private readonly scanned: (label: string, cls: number) => pkcs11js.Handle | undefined = () => undefined,
  ) {}

  async publicKey(): Promise<Buffer> {
    return Buffer.from((await this.keyPair()).spki);
  }

  async sign(data: Buffer): Promise<Buffer> {
    const { privateKey } = await this.keyPair();
    const hash = createHash("sha256").update(data).digest();
    return this.device.run("sign audit digest", (s) => {
      this.device.mod.C_SignInit(s, { mechanism: pkcs11js.CKM_ECDSA }, privateKey);
      return Buffer.from(this.device.mod.C_Sign(s, hash, Buffer.alloc(64)));
    });
  }

  /** Finds or (first use on this token) creates the pair; concurrent first uses share one promise. */
  private keyPair(): Promise<{ privateKey: pkcs11js.Handle; spki: Buffer }> {
    this.pair ??= this.findOrCreate().catch((err: unknown) => {
      this.pair = undefined;
      throw err;
    });
    return this.pair;
  }

  private async findOrCreate(): Promise<{ privateKey: pkcs11js.Handle; spki: Buffer }> {
    const mod = this.device.mod;
    return this.device.run("find or create audit signing key", (s) => {
      const find = (cls: number) => {
        const seen = this.scanned(AUDIT_SIGNING_KEY_LABEL, cls);
        if (seen !== undefined) return seen;
        mod.C_FindObjectsInit(s, [
          { type: pkcs11js.CKA_CLASS, value: cls },
          { type: pkcs11js.CKA_LABEL, value: AUDIT_SIGNING_KEY_LABEL },
        ]);
        try {
          return mod.C_FindObjects(s, 1)[0];
        } finally {
          mod.C_FindObjectsFinal(s);
        }
      };
      let priv = find(pkcs11js.CKO_PRIVATE_KEY);
      let pub = find(pkcs11js.CKO_PUBLIC_KEY);
      if (priv === undefined || pub === undefined) {
        const common = [
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_LABEL, value: AUDIT_SIGNING_KEY_LABEL },
        ];
        const pair = mod.C_GenerateKeyPair(
          s,
          { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
          [...common, { type: pkcs11js.CKA_EC_PARAMS, value: CURVES.ECC_NIST_P256.oid }, { type: pkcs11js.CKA_VERIFY, value: true }, { type: pkcs11js.CKA_PRIVATE, value: false }],
          [
            ...common,
            { type: pkcs11js.CKA_PRIVATE, value: true },
            { type: pkcs11js.CKA_SENSITIVE, value: true },
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_SIGN, value: true },
            { type: pkcs11js.CKA_DECRYPT, value: false },
            { type: pkcs11js.CKA_DERIVE, value: false },
          ],
        );
        priv = pair.privateKey;
        pub = pair.publicKey;
      }
      return { privateKey: priv, spki: readSpki(mod, s, pub, "ECC_NIST_P256") };
    });
  }
}
