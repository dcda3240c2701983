import pkcs11js from "pkcs11js";
import { KmsError } from "../kms/errors.js";
import type { KeyMaterialRef, KeyStore, UnwrapRequest } from "../kms/ports.js";
import type {
  AsymmetricKeySpec,
  EncryptionAlgorithm,
  HmacKeySpec,
  KeyUsage,
  MacAlgorithm,
  SigningAlgorithm,
  UnwrapPath,
  WrappingAlgorithm,
  WrappingKeySpec,
} from "../kms/types.js";
import type { AuditSigner } from "../audit/signer.js";
import { AsymmetricOps } from "./asymmetric-ops.js";
import { Pkcs11AuditSigner } from "./audit-signing-key.js";
import { type OaepFallbackSetting, type ProbedCapabilities, probeOnOwnSession } from "./capabilities.js";
import { generateDataKeyPair } from "./data-key-pairs.js";
import { Device, type DeviceObserver, isStaleKeyHandle } from "./device.js";
import { deviceThreadFor } from "./device-thread.js";
import { ThreadSession } from "./thread-session.js";
import { HmacOps } from "./hmac-ops.js";
import { ImportOps } from "./import-ops.js";
import { KeyObjectCache, type KeyObjects, handlesOf } from "./key-objects.js";
import { isGcmAuthFailure } from "./return-values.js";
import { SessionCopies } from "./session-copies.js";
import type { SessionPoolEvents } from "./session-pool.js";
import { QUARANTINE_PREFIX, aes256KeyTemplate, keyLabel, keyObjectId, parseKeyLabel } from "./templates.js";
import type { PreparedStore } from "./prepared-open.js";
import { DEFAULT_CALL_TIMEOUT_MS, type TokenOptions, openToken } from "./token.js";

/** Default bound on keys with an in-memory session copy (see {@link SessionCopies}); ~8 KiB each in SoftHSM2. */
export const DEFAULT_SESSION_COPIES = 1000;

export { Pkcs11OperationError } from "./device.js";

/** Everything a key store reports about its device (failures, faults, replaced sessions); see device.ts. */
export type KeyStoreObserver = DeviceObserver & SessionPoolEvents;

const TAG_BITS = 128;
/** One device RNG call serves this many bytes of nonces (341 AES-GCM IVs). */
const NONCE_BLOCK_BYTES = 4096;

/**
 * The KeyStore port on a PKCS#11 token: AES and RNG here, key pairs in {@link AsymmetricOps}, HMAC in
 * {@link HmacOps}. Object handles are found once, at open, and cached ({@link KeyObjectCache}).
 *
 * AES-GCM runs on the device thread (device-thread.ts: one message per event-loop turn, a few µs per call
 * under load) unless `deviceThread: false`; then, like RNG, synchronously on the event loop, which on
 * SoftHSM2 costs less than the 40–80 µs a hop to the libuv thread pool adds (see docs/benchmarks.md).
 */
export class Pkcs11KeyStore implements KeyStore {
  private readonly objects = new KeyObjectCache();
  /** Keys whose objects are being looked up again after a stale handle (see {@link withFreshHandles}). */
  private readonly refinding = new Map<string, Promise<boolean>>();
  private readonly asym: AsymmetricOps;
  private readonly hmac: HmacOps;
  private readonly imports: ImportOps;
  /** In-memory copies of hot keys, used in place of the token objects. */
  readonly copies: SessionCopies;

  private constructor(
    readonly id: string,
    private readonly device: Device,
    readonly capabilities: ProbedCapabilities,
    importFallback: OaepFallbackSetting,
    openSession: () => pkcs11js.Handle,
    sessionCopies: number,
    /** Where AES-GCM and P-256 signatures run when set; undefined: on the event loop. */
    private readonly thread?: ThreadSession,
  ) {
    this.copies = new SessionCopies(device.mod, openSession, { capacity: sessionCopies }, () => this.objects.values());
    this.asym = new AsymmetricOps(device, this.objects, capabilities, this.copies, thread);
    this.hmac = new HmacOps(device, this.objects, capabilities.allowedMechanisms);
    this.imports = new ImportOps(device, this.objects, capabilities, importFallback);
  }

  /** Device random bytes not yet handed out as nonces (public values: IVs). */
  private nonceBlock: Buffer = Buffer.alloc(0);
  private nonceOffset = 0;

  /** `prepared`: the probe and scan already made by the start-up worker (prepared-open.ts), used as they are. */
  static open(id: string, opts: TokenOptions, observer: KeyStoreObserver = {}, prepared?: PreparedStore): Pkcs11KeyStore {
    const token = openToken(opts, observer);
    try {
      const caps = prepared?.capabilities ?? probeOnOwnSession(token.mod, token.slot, opts.rsaOaepSha256Fallback ?? "auto");
      const openSession = () => token.mod.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      const copies = opts.sessionCopies ?? DEFAULT_SESSION_COPIES;
      const importFallback = opts.importOaepSha256Fallback ?? "auto";
      const thread =
        opts.deviceThread !== true
          ? undefined
          : new ThreadSession(
              deviceThreadFor(opts.modulePath),
              token.mod,
              openSession,
              opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
              observer.sessionRetried,
              opts.deviceThreadInlinePerTurn,
            );
      const store = new Pkcs11KeyStore(id, new Device(token.mod, token.pool, observer), caps, importFallback, openSession, copies, thread);
      if (prepared) store.objects.fill(prepared.objects);
      else token.pool.trySync((s) => store.objects.scan(token.mod, s));
      return store;
    } catch (err) {
      token.pool.close(); // a failed attempt (the background reconnect makes many) must not leave sessions behind
      throw err;
    }
  }

  /** The audit log's signing key on this token (docs/audit.md); created on first use. */
  auditSigner(): AuditSigner {
    return new Pkcs11AuditSigner(this.device, (label, cls) => this.objects.others.get(label)?.find((o) => o.cls === cls)?.handle);
  }

  async generateAesKey(ref: KeyMaterialRef): Promise<void> {
    if (this.objects.has(ref)) throw new Error(`key object ${keyLabel(ref.keyId, ref.version)} already exists`);
    const template = aes256KeyTemplate(keyLabel(ref.keyId, ref.version), keyObjectId(ref.keyId, ref.version));
    const handle = await this.device.run("generate key", (s) =>
      this.device.mod.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template),
    );
    this.objects.set(ref, { secret: handle });
  }

  encryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.encryptOnce(ref, iv, aad, plaintext));
  }

  decryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, body: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.decryptOnce(ref, iv, aad, body));
  }

  private async encryptOnce(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
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

  private async decryptOnce(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, body: Buffer): Promise<Buffer> {
    const label = keyLabel(ref.keyId, ref.version);
    const o = this.objects.getByLabel(label);
    const token = secretIn(o, ref);
    const classify = (rv: number | undefined) =>
      isGcmAuthFailure(rv)
        ? new KmsError("InvalidCiphertextException", "The ciphertext is invalid, was tampered with, or the encryption context does not match.")
        : undefined;
    if (this.thread?.offload()) return this.onThread("decrypt", label, o!, token, iv, aad, body, body.length, classify);
    const mech = gcm(iv, aad);
    const out = Buffer.allocUnsafe(body.length);
    return this.device.run(
      "decrypt",
      (s) => {
        this.initOnCopy(label, o!, token, (key) => this.device.mod.C_DecryptInit(s, mech, key));
        return this.device.mod.C_Decrypt(s, body, out);
      },
      classify,
      "AES_GCM",
    );
  }

  async generateRandom(length: number): Promise<Buffer> {
    return this.device.run("generate random", (s) => this.device.mod.C_GenerateRandom(s, Buffer.allocUnsafe(length)), undefined, "RNG");
  }

  async nonce(length: number): Promise<Buffer> {
    if (length > NONCE_BLOCK_BYTES) return this.generateRandom(length);
    if (this.nonceOffset + length > this.nonceBlock.length) {
      // Concurrent refills are harmless: each replaces the block with fresh device bytes and resets the
      // offset, and a slice is only ever taken by advancing the offset, so no byte is handed out twice.
      this.nonceBlock = await this.generateRandom(NONCE_BLOCK_BYTES);
      this.nonceOffset = 0;
    }
    const start = this.nonceOffset;
    this.nonceOffset += length;
    return this.nonceBlock.subarray(start, start + length);
  }

  generateKeyPair(ref: KeyMaterialRef, spec: AsymmetricKeySpec, usage: KeyUsage): Promise<void> {
    return this.asym.generateKeyPair(ref, spec, usage);
  }
  getPublicKey(ref: KeyMaterialRef): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.asym.getPublicKey(ref));
  }
  sign(ref: KeyMaterialRef, algorithm: SigningAlgorithm, input: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.asym.sign(ref, algorithm, input));
  }
  verify(ref: KeyMaterialRef, algorithm: SigningAlgorithm, input: Buffer, signature: Buffer): Promise<boolean> {
    return this.withFreshHandles(ref, () => this.asym.verify(ref, algorithm, input, signature));
  }
  encryptRsa(ref: KeyMaterialRef, algorithm: EncryptionAlgorithm, plaintext: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.asym.encryptRsa(ref, algorithm, plaintext));
  }
  decryptRsa(ref: KeyMaterialRef, algorithm: EncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.asym.decryptRsa(ref, algorithm, ciphertext));
  }
  generateDataKeyPair(spec: AsymmetricKeySpec): Promise<{ publicKey: Buffer; privateKey: Buffer }> {
    return generateDataKeyPair(this.device, spec);
  }
  generateHmacKey(ref: KeyMaterialRef, spec: HmacKeySpec): Promise<void> {
    return this.hmac.generateHmacKey(ref, spec);
  }
  generateMac(ref: KeyMaterialRef, algorithm: MacAlgorithm, message: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.hmac.generateMac(ref, algorithm, message));
  }
  verifyMac(ref: KeyMaterialRef, algorithm: MacAlgorithm, message: Buffer, mac: Buffer): Promise<boolean> {
    return this.withFreshHandles(ref, () => this.hmac.verifyMac(ref, algorithm, message, mac));
  }

  createWrappingKey(keyId: string, spec: WrappingKeySpec, algorithm: WrappingAlgorithm, expiresAt: Date): Promise<{ wrappingKeyId: string; publicKey: Buffer }> {
    return this.imports.createWrappingKey(keyId, spec, algorithm, expiresAt);
  }
  unwrapPath(algorithm: WrappingAlgorithm): UnwrapPath | undefined {
    return this.imports.unwrapPath(algorithm);
  }
  signImportToken(payload: Buffer): Promise<Buffer> {
    return this.imports.signImportToken(payload);
  }
  verifyImportToken(payload: Buffer, mac: Buffer): Promise<boolean> {
    return this.imports.verifyImportToken(payload, mac);
  }
  unwrapKeyMaterial(req: UnwrapRequest): Promise<{ checkValue: Buffer; unwrapPath: UnwrapPath }> {
    return this.imports.unwrapKeyMaterial(req);
  }
  outstandingWrappingKeys(): number {
    return this.imports.outstandingWrappingKeys;
  }
  destroyExpiredWrappingKeys(now: Date): Promise<void> {
    return this.imports.destroyExpiredWrappingKeys(now);
  }
  destroyOldWrappingKeys(keyId: string, keep: number): Promise<void> {
    return this.imports.destroyOldWrappingKeys(keyId, keep);
  }

  /** Sessions of the pool (open, idle, callers waiting) and keys with a session copy, for metrics. */
  usage(): { open: number; idle: number; waiting: number; copies: number } {
    const { open, idle } = this.device.pool.size;
    return { open, idle, waiting: this.device.pool.waiting, copies: this.copies.size };
  }

  /** True when the material is complete: the secret key, or both halves of a pair. */
  hasKey(ref: KeyMaterialRef): boolean {
    return this.objects.isComplete(ref);
  }

  async inventory(): Promise<KeyMaterialRef[]> {
    return this.objects.refs();
  }

  /**
   * Destroys the in-memory copies of every version of `keyId` (the key was disabled, scheduled for deletion,
   * rotated…): they are made again on use while the key is usable. The token objects are untouched.
   */
  dropCopies(keyId: string): void {
    this.copies.dropWhere((label) => parseKeyLabel(label)?.keyId === keyId);
  }

  async destroyKey(ref: KeyMaterialRef): Promise<void> {
    this.copies.drop(keyLabel(ref.keyId, ref.version));
    const o = this.objects.get(ref);
    if (!o) return;
    for (const h of handlesOf(o)) {
      try {
        await this.device.run("destroy key", (s) => this.device.mod.C_DestroyObject(s, h));
      } catch (err) {
        // Already gone (destroyed behind our back): what this call wanted. Anything else is a failure.
        if (!isStaleKeyHandle(err)) throw err;
      }
    }
    this.objects.delete(ref);
    this.asym.forget(ref);
  }

  async quarantineKey(ref: KeyMaterialRef): Promise<void> {
    this.copies.drop(keyLabel(ref.keyId, ref.version));
    const o = this.objects.get(ref);
    if (!o) return;
    const label = QUARANTINE_PREFIX + keyLabel(ref.keyId, ref.version);
    for (const h of handlesOf(o)) {
      await this.device.run("quarantine key", (s) =>
        this.device.mod.C_SetAttributeValue(s, h, [{ type: pkcs11js.CKA_LABEL, value: label }]),
      );
    }
    this.objects.delete(ref);
    this.asym.forget(ref);
  }

  /**
   * Closes the sessions and resolves once the calls still running on them have finished (at most
   * `drainMs`): whoever re-opens the token afterwards sees every object those calls made.
   */
  async close(drainMs = 5000): Promise<void> {
    this.device.pool.close();
    let timer: NodeJS.Timeout | undefined;
    const [drained, threadIdle] = await Promise.all([
      Promise.race([
        this.device.pool.drained().then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), drainMs))),
      ]),
      this.thread ? this.thread.close(drainMs) : true,
    ]);
    clearTimeout(timer);
    // The copies' session goes last, once no call can be using a copy; a call stuck in the device past the
    // drain time keeps it open (one session) rather than have its key destroyed under it.
    if (drained && threadIdle) this.copies.close();
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
   * Runs a key operation; if one of the key's handles turned out stale (the object went away or was
   * replaced while the token is fine, see device.ts StaleKeyHandleError), looks the key's objects up again
   * by label once: found, the operation runs again on the fresh handles; gone, the key's entry is dropped
   * and the call answers KMSInvalidStateException (as will later calls, without touching the device). The
   * key store stays CONNECTED either way: one key's object is not the token's failure.
   */
  private async withFreshHandles<T>(ref: KeyMaterialRef, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (!isStaleKeyHandle(err)) throw err;
      if (!(await this.refind(ref))) throw err;
      return await call();
    }
  }

  /** One search for the key's objects by label, shared by every call that met the same stale handle. */
  private refind(ref: KeyMaterialRef): Promise<boolean> {
    const label = keyLabel(ref.keyId, ref.version);
    let pending = this.refinding.get(label);
    if (!pending) {
      this.copies.drop(label);
      this.asym.forget(ref);
      pending = this.device
        .run("find key", (s) => this.objects.refind(this.device.mod, s, ref))
        .catch(() => false)
        .finally(() => this.refinding.delete(label));
      this.refinding.set(label, pending);
    }
    return pending;
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

