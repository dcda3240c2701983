import pkcs11js from "pkcs11js";
import type { AuditSigner } from "../audit/signer.js";
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
import { type OaepFallbackSetting, type ProbedCapabilities, probeOnOwnSession } from "./objects/capabilities.js";
import { QUARANTINE_PREFIX, keyLabel, parseKeyLabel } from "./objects/templates.js";
import { AesOps } from "./ops/aes.js";
import { AsymmetricOps } from "./ops/asymmetric.js";
import { Pkcs11AuditSigner } from "./ops/audit-signing-key.js";
import { generateDataKeyPair } from "./ops/data-key-pairs.js";
import { HmacOps } from "./ops/hmac.js";
import { ImportOps } from "./ops/import.js";
import { RandomSource } from "./ops/random.js";
import { Device, type DeviceObserver, isStaleKeyHandle } from "./runtime/device.js";
import { deviceThreadFor } from "./runtime/device-thread.js";
import { KeyObjectCache, handlesOf } from "./runtime/key-objects.js";
import type { PreparedStore } from "./runtime/prepared-open.js";
import { SessionCopies } from "./runtime/session-copies.js";
import type { SessionPoolEvents } from "./runtime/session-pool.js";
import { ThreadSession } from "./runtime/thread-session.js";
import { DEFAULT_CALL_TIMEOUT_MS, type TokenOptions, openToken } from "./runtime/token.js";

/** Default bound on keys with an in-memory session copy (see {@link SessionCopies}); ~8 KiB each in SoftHSM2. */
export const DEFAULT_SESSION_COPIES = 1000;

export { Pkcs11OperationError } from "./runtime/device.js";

/** Everything a key store reports about its device (failures, faults, replaced sessions); see runtime/device.ts. */
export type KeyStoreObserver = DeviceObserver & SessionPoolEvents;

/**
 * The KeyStore port on a PKCS#11 token: the one face of src/hsm. Each key family's operations live in
 * ops/ (AES, asymmetric, HMAC, import, data key pairs, RNG); this class routes the port's calls to them and
 * owns what spans them: the key objects' handles (found once, at open, and cached: {@link KeyObjectCache}),
 * the session copies of hot keys, a stale handle's second look-up, destruction and quarantine, close.
 */
export class Pkcs11KeyStore implements KeyStore {
  private readonly objects = new KeyObjectCache();
  /** Keys whose objects are being looked up again after a stale handle (see {@link withFreshHandles}). */
  private readonly refinding = new Map<string, Promise<boolean>>();
  private readonly aes: AesOps;
  private readonly random: RandomSource;
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
    this.aes = new AesOps(device, this.objects, this.copies, thread);
    this.random = new RandomSource(device);
    this.asym = new AsymmetricOps(device, this.objects, capabilities, this.copies, thread);
    this.hmac = new HmacOps(device, this.objects, capabilities.allowedMechanisms);
    this.imports = new ImportOps(device, this.objects, capabilities, importFallback);
  }

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

  generateAesKey(ref: KeyMaterialRef): Promise<void> {
    return this.aes.generateAesKey(ref);
  }
  encryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.aes.encrypt(ref, iv, aad, plaintext));
  }
  decryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, body: Buffer): Promise<Buffer> {
    return this.withFreshHandles(ref, () => this.aes.decrypt(ref, iv, aad, body));
  }
  generateRandom(length: number): Promise<Buffer> {
    return this.random.generateRandom(length);
  }
  nonce(length: number): Promise<Buffer> {
    return this.random.nonce(length);
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

  /**
   * Runs a key operation; if one of the key's handles turned out stale (the object went away or was
   * replaced while the token is fine, see runtime/device.ts StaleKeyHandleError), looks the key's objects up again
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
}
