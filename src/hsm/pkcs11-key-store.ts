import pkcs11js from "pkcs11js";
import { KmsError } from "../kms/errors.js";
import type { KeyMaterialRef, KeyStore } from "../kms/ports.js";
import { CKR, isGcmAuthFailure, rvOf } from "./return-values.js";
import type { SessionPool } from "./session-pool.js";
import { QUARANTINE_PREFIX, aes256KeyTemplate, keyLabel, keyObjectId, parseKeyLabel } from "./templates.js";
import { type TokenOptions, openToken } from "./token.js";

const TAG_BITS = 128;

/**
 * The KeyStore port on a PKCS#11 token.
 *
 * Object handles are found once, at open, and cached: SoftHSM2's C_FindObjects scans every object on the
 * token, so searching per request would make latency grow with the number of keys.
 *
 * AES and RNG calls run synchronously on the event loop: measured on SoftHSM2 they cost less than the
 * 40–80 µs a hop to the libuv thread pool adds (see docs/benchmarks.md).
 */
export class Pkcs11KeyStore implements KeyStore {
  private readonly handles = new Map<string, pkcs11js.Handle>();

  private constructor(
    readonly id: string,
    private readonly mod: pkcs11js.PKCS11,
    private readonly pool: SessionPool,
  ) {}

  static open(id: string, opts: TokenOptions): Pkcs11KeyStore {
    const token = openToken(opts);
    const store = new Pkcs11KeyStore(id, token.mod, token.pool);
    store.scan();
    return store;
  }

  async generateAesKey(ref: KeyMaterialRef): Promise<void> {
    const label = keyLabel(ref.keyId, ref.version);
    if (this.handles.has(label)) throw new Error(`key object ${label} already exists`);
    const handle = await this.call("generate key", (s) =>
      this.mod.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aes256KeyTemplate(label, keyObjectId(ref.keyId, ref.version))),
    );
    this.handles.set(label, handle);
  }

  async encryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    const key = this.handleOf(ref);
    const out = Buffer.allocUnsafe(plaintext.length + TAG_BITS / 8);
    return this.call("encrypt", (s) => {
      this.mod.C_EncryptInit(s, gcm(iv, aad), key);
      return this.mod.C_Encrypt(s, plaintext, out);
    });
  }

  async decryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, body: Buffer): Promise<Buffer> {
    const key = this.handleOf(ref);
    const out = Buffer.allocUnsafe(body.length);
    return this.call(
      "decrypt",
      (s) => {
        this.mod.C_DecryptInit(s, gcm(iv, aad), key);
        return this.mod.C_Decrypt(s, body, out);
      },
      (rv) =>
        isGcmAuthFailure(rv)
          ? new KmsError("InvalidCiphertextException", "The ciphertext is invalid, was tampered with, or the encryption context does not match.")
          : undefined,
    );
  }

  async generateRandom(length: number): Promise<Buffer> {
    return this.call("generate random", (s) => this.mod.C_GenerateRandom(s, Buffer.allocUnsafe(length)));
  }

  hasKey(ref: KeyMaterialRef): boolean {
    return this.handles.has(keyLabel(ref.keyId, ref.version));
  }

  async inventory(): Promise<KeyMaterialRef[]> {
    return [...this.handles.keys()].map((l) => parseKeyLabel(l)!);
  }

  async destroyKey(ref: KeyMaterialRef): Promise<void> {
    const label = keyLabel(ref.keyId, ref.version);
    const handle = this.handles.get(label);
    if (!handle) return;
    await this.call("destroy key", (s) => this.mod.C_DestroyObject(s, handle));
    this.handles.delete(label);
  }

  async quarantineKey(ref: KeyMaterialRef): Promise<void> {
    const label = keyLabel(ref.keyId, ref.version);
    const handle = this.handles.get(label);
    if (!handle) return;
    await this.call("quarantine key", (s) =>
      this.mod.C_SetAttributeValue(s, handle, [{ type: pkcs11js.CKA_LABEL, value: QUARANTINE_PREFIX + label }]),
    );
    this.handles.delete(label);
  }

  async close(): Promise<void> {
    this.pool.close();
  }

  /** Reads every secret-key label once and caches the handles of p11kms's objects. */
  private scan(): void {
    this.pool.trySync((s) => {
      this.mod.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }]);
      try {
        for (let batch = this.mod.C_FindObjects(s, 1024); batch.length > 0; batch = this.mod.C_FindObjects(s, 1024)) {
          for (const h of batch) {
            const [attr] = this.mod.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_LABEL }]);
            const label = attr?.value?.toString("utf8") ?? "";
            if (parseKeyLabel(label)) this.handles.set(label, h);
          }
        }
      } finally {
        this.mod.C_FindObjectsFinal(s);
      }
    });
  }

  private handleOf(ref: KeyMaterialRef): pkcs11js.Handle {
    const h = this.handles.get(keyLabel(ref.keyId, ref.version));
    if (!h) {
      throw new KmsError("KMSInvalidStateException", `The key material of ${ref.keyId} is not available in its key store.`);
    }
    return h;
  }

  /**
   * Runs one device operation: synchronously when a session is idle, otherwise queued for one. PKCS#11
   * failures become KmsErrors here — `classify` decides per operation which return values are the
   * caller's fault; the rest are internal, with the pkcs11js error kept as the cause for the log.
   */
  private async call<T>(
    op: string,
    fn: (session: pkcs11js.Handle) => T,
    classify?: (rv: number | undefined) => KmsError | undefined,
  ): Promise<T> {
    try {
      const sync = this.pool.trySync(fn);
      return sync ? sync.value : await this.pool.use(fn);
    } catch (err) {
      if (err instanceof KmsError) throw err;
      const rv = rvOf(err);
      const mapped = classify?.(rv);
      if (mapped) throw new KmsError(mapped.code, mapped.message, { cause: err });
      const device = rv === CKR.DEVICE_ERROR || rv === CKR.DEVICE_REMOVED || rv === CKR.TOKEN_NOT_PRESENT;
      throw new KmsError(
        device ? "KeyUnavailableException" : "KMSInternalException",
        device ? "The key store is not available." : "The request failed due to an internal error.",
        { cause: new Pkcs11OperationError(op, rv, err) },
      );
    }
  }
}

/** A device failure, described for logs: the operation and the CK_RV in hex. Never sent to clients. */
export class Pkcs11OperationError extends Error {
  override readonly name = "Pkcs11OperationError";
  constructor(
    readonly operation: string,
    readonly rv: number | undefined,
    cause: unknown,
  ) {
    super(`PKCS#11 ${operation} failed${rv === undefined ? "" : ` with CK_RV 0x${rv.toString(16)}`}`, { cause });
  }
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: iv.length * 8, tagBits: TAG_BITS } as pkcs11js.IParams,
  };
}
