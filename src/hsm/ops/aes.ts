import pkcs11js from "pkcs11js";
import { KmsError } from "../../kms/errors.js";
import type { KeyMaterialRef } from "../../kms/ports.js";
import { aes256KeyTemplate, keyLabel, keyObjectId } from "../objects/templates.js";
import type { Device } from "../runtime/device.js";
import type { KeyObjectCache, KeyObjects } from "../runtime/key-objects.js";
import { isGcmAuthFailure } from "../runtime/return-values.js";
import type { SessionCopies } from "../runtime/session-copies.js";
import type { ThreadSession } from "../runtime/thread-session.js";

const TAG_BITS = 128;

/**
 * AES-256 keys and AES-GCM (SYMMETRIC_DEFAULT) on the device.
 *
 * AES-GCM runs on the device thread (runtime/device-thread.ts: one message per event-loop turn, a few µs per
 * call under load) when the store has one; otherwise synchronously on the event loop, which on SoftHSM2
 * costs less than the 40–80 µs a hop to the libuv thread pool adds (see docs/benchmarks.md). Either way
 * the call uses the key's session copy when it has one ({@link SessionCopies}).
 */
export class AesOps {
  constructor(
    private readonly device: Device,
    private readonly objects: KeyObjectCache,
    private readonly copies: SessionCopies,
    /** Where AES-GCM runs when set; undefined: on the event loop. */
    private readonly thread?: ThreadSession,
  ) {}

  async generateAesKey(ref: KeyMaterialRef): Promise<void> {
    if (this.objects.has(ref)) throw new Error(`key object ${keyLabel(ref.keyId, ref.version)} already exists`);
    const template = aes256KeyTemplate(keyLabel(ref.keyId, ref.version), keyObjectId(ref.keyId, ref.version));
    const handle = await this.device.run("generate key", (s) =>
      this.device.mod.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template),
    );
    this.objects.set(ref, { secret: handle });
  }

  async encrypt(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    const label = keyLabel(ref.keyId, ref.version);
    const o = this.objects.getByLabel(label);
    const token = secretIn(o, ref);
    if (this.thread?.offload()) return this.onThread("encrypt", label, o!, token, iv, aad, plaintext, plaintext.length + TAG_BITS / 8);
    const out = Buffer.allocUnsafe(plaintext.length + TAG_BITS / 8);
    const mech = gcm(iv, aad);
    return this.device.run("encrypt", (s) => {
      this.initOnCopy(label, o!, token, (key) => this.device.mod.C_EncryptInit(s, mech, key));
      return this.device.mod.C_Encrypt(s, plaintext, out);
    }, undefined, "AES_GCM");
  }

  async decrypt(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, body: Buffer): Promise<Buffer> {
    const label = keyLabel(ref.keyId, ref.version);
    const o = this.objects.getByLabel(label);
    const token = secretIn(o, ref);
    if (this.thread?.offload()) return this.onThread("decrypt", label, o!, token, iv, aad, body, body.length, classifyDecrypt);
    const mech = gcm(iv, aad);
    const out = Buffer.allocUnsafe(body.length);
    return this.device.run(
      "decrypt",
      (s) => {
        this.initOnCopy(label, o!, token, (key) => this.device.mod.C_DecryptInit(s, mech, key));
        return this.device.mod.C_Decrypt(s, body, out);
      },
      classifyDecrypt,
      "AES_GCM",
    );
  }

  /** An AES-GCM call on the device thread, on the key's session copy when there is one (pinned meanwhile). */
  private onThread(
    op: "encrypt" | "decrypt",
    label: string,
    o: KeyObjects,
    token: pkcs11js.Handle,
    iv: Buffer,
    aad: Buffer,
    input: Buffer,
    outputBytes: number,
    classify?: (rv: number | undefined) => KmsError | undefined,
  ): Promise<Buffer> {
    const key = { label, state: o, half: "secret" as const, token };
    const job = { kind: op, mechanism: pkcs11js.CKM_AES_GCM, iv, aad, input, outputBytes };
    return this.device.runDetached(op, () => this.thread!.runOnKey(this.copies, key, job), classify, "AES_GCM");
  }

  /**
   * Runs an Init on the key's session copy (made now if admitted), or on the token object. A copy gone with
   * its session (closed under us) is forgotten and the Init retried on the token object, in the same call.
   */
  private initOnCopy(label: string, o: KeyObjects, token: pkcs11js.Handle, init: (key: pkcs11js.Handle) => void): void {
    const key = this.copies.pick(label, o, "secret", token);
    try {
      init(key);
    } catch (err) {
      if (!this.copies.isLostCopy(key, token, err)) throw err;
      this.copies.lost();
      init(token);
    }
  }
}

/** A failed tag check is the caller's ciphertext (or context) being wrong, never a device fault. */
function classifyDecrypt(rv: number | undefined): KmsError | undefined {
  return isGcmAuthFailure(rv)
    ? new KmsError("InvalidCiphertextException", "The ciphertext is invalid, was tampered with, or the encryption context does not match.")
    : undefined;
}

function secretIn(o: KeyObjects | undefined, ref: KeyMaterialRef): pkcs11js.Handle {
  const h = o?.secret;
  if (h === undefined) {
    throw new KmsError("KMSInvalidStateException", `The key material of ${ref.keyId} is not available in its key store.`);
  }
  return h;
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: iv.length * 8, tagBits: TAG_BITS } as pkcs11js.IParams,
  };
}
