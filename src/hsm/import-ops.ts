import { randomUUID } from "node:crypto";
import pkcs11js from "pkcs11js";
import { KmsError } from "../kms/errors.js";
import type { KeyMaterialRef } from "../kms/ports.js";
import type { WrappingAlgorithm, WrappingKeySpec } from "../kms/types.js";
import type { ProbedCapabilities } from "./capabilities.js";
import { type Device, retain } from "./device.js";
import {
  IMPORT_TOKEN_KEY_LABEL,
  WRAP_PREFIX,
  ephemeralKeyTemplate,
  importTokenKeyTemplate,
  importedAesTemplate,
  wrappingKeyPairTemplates,
} from "./import-templates.js";
import type { KeyObjectCache } from "./key-objects.js";
import { CKM_AES_KEY_WRAP_KWP, oaepMechanism, rsaBits } from "./mechanisms.js";
import { readSpki } from "./public-key.js";
import { CKR, isVerifyFailure, rvOf } from "./return-values.js";
import { keyLabel, keyObjectId } from "./templates.js";

/** CK_RVs of C_UnwrapKey that mean "this wrapped blob does not unwrap under this key". */
const UNDECRYPTABLE = new Set<number>([
  CKR.GENERAL_ERROR, // SoftHSM2's answer to a bad OAEP padding
  CKR.DATA_INVALID,
  CKR.DATA_LEN_RANGE,
  CKR.ENCRYPTED_DATA_INVALID,
  CKR.ENCRYPTED_DATA_LEN_RANGE,
  0x110, // CKR_WRAPPED_KEY_INVALID
  0x112, // CKR_WRAPPED_KEY_LEN_RANGE
]);
/** CK_RVs that mean "it unwrapped, but is no valid AES key" (a length AES does not have). */
const WRONG_MATERIAL = new Set<number>([0x13 /* ATTRIBUTE_VALUE_INVALID */, 0x62 /* KEY_SIZE_RANGE */, 0xd1 /* TEMPLATE_INCONSISTENT */]);

const wrongSize = () =>
  new KmsError("IncorrectKeyMaterialException", "The key material is invalid: SYMMETRIC_DEFAULT key material must be exactly 256 bits (32 bytes).");

function classifyUnwrap(rv: number | undefined): KmsError | undefined {
  if (rv !== undefined && UNDECRYPTABLE.has(rv)) {
    return new KmsError("InvalidCiphertextException", "The wrapped key material could not be unwrapped with these import parameters.");
  }
  if (rv !== undefined && WRONG_MATERIAL.has(rv)) return wrongSize();
  return undefined;
}

/** Whether the device accepts the key for AES (it refuses lengths other than 16, 24, 32 bytes). */
function aesUsable(mod: pkcs11js.PKCS11, s: pkcs11js.Handle, key: pkcs11js.Handle): boolean {
  try {
    mod.C_EncryptInit(s, { mechanism: pkcs11js.CKM_AES_ECB }, key);
  } catch {
    return false;
  }
  mod.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(16)); // completes the operation; the output is discarded
  return true;
}

/** The length probe's one-off copy: a session generic secret, extractable only by wrapping (sensitive). */
function probeTemplate(): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
  ];
}

/**
 * BYOK on the device: wrapping key pairs, the import-token MAC key, and the unwrap itself. Material moves
 * only as C_UnwrapKey inputs (wrapped) and token objects (sensitive, non-extractable); for
 * RSA_AES_KEY_WRAP_* the ephemeral AES key is a session object destroyed in the same session call, because
 * SoftHSM2 has no CKM_RSA_AES_KEY_WRAP to do both steps at once.
 */
export class ImportOps {
  /** Wrapping private keys by wrapping key id (`<uuid>:<expiry ms>`); filled on creation and on lookup. */
  private readonly wrapping = new Map<string, pkcs11js.Handle>();
  private tokenKey: Promise<pkcs11js.Handle> | undefined;
  private swept = false;

  constructor(
    private readonly device: Device,
    private readonly objects: KeyObjectCache,
    private readonly caps: ProbedCapabilities,
  ) {}

  /** SHA-256 OAEP only where the device does it: a software decode would put the material in process memory. */
  canUnwrap(algorithm: WrappingAlgorithm): boolean {
    return !algorithm.endsWith("_SHA_256") || this.caps.oaepSha256OnDevice;
  }

  async createWrappingKey(spec: WrappingKeySpec, expiresAt: Date): Promise<{ wrappingKeyId: string; publicKey: Buffer }> {
    const wrappingKeyId = `${randomUUID()}:${expiresAt.getTime()}`;
    const t = wrappingKeyPairTemplates(rsaBits(spec)!, WRAP_PREFIX + wrappingKeyId, this.caps.allowedMechanisms);
    const mod = this.device.mod;
    const pair = await this.device.runAsync("generate wrapping key", async (s) => {
      const p = await mod.C_GenerateKeyPairAsync(s, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN }, t.publicKey, t.privateKey);
      retain(t);
      return p;
    });
    this.wrapping.set(wrappingKeyId, pair.privateKey);
    try {
      const publicKey = await this.device.run("read wrapping public key", (s) => readSpki(mod, s, pair.publicKey, spec));
      return { wrappingKeyId, publicKey };
    } finally {
      await this.device.run("destroy wrapping public key", (s) => mod.C_DestroyObject(s, pair.publicKey)).catch(() => undefined);
    }
  }

  async signImportToken(payload: Buffer): Promise<Buffer> {
    const key = await this.importTokenKey();
    return this.device.run("sign import token", (s) => {
      this.device.mod.C_SignInit(s, { mechanism: pkcs11js.CKM_SHA256_HMAC }, key);
      return Buffer.from(this.device.mod.C_Sign(s, payload, Buffer.alloc(32)));
    });
  }

  async verifyImportToken(payload: Buffer, mac: Buffer): Promise<boolean> {
    const key = await this.importTokenKey();
    return this.device.run("verify import token", (s) => {
      this.device.mod.C_VerifyInit(s, { mechanism: pkcs11js.CKM_SHA256_HMAC }, key);
      try {
        return this.device.mod.C_Verify(s, payload, mac);
      } catch (err) {
        if (isVerifyFailure(rvOf(err))) return false;
        throw err;
      }
    });
  }

  async importAesKey(ref: KeyMaterialRef, wrappingKeyId: string, algorithm: WrappingAlgorithm, encrypted: Buffer): Promise<void> {
    if (this.objects.has(ref)) throw new Error(`key object ${keyLabel(ref.keyId, ref.version)} already exists`);
    if (!this.canUnwrap(algorithm)) throw new KmsError("UnsupportedOperationException", `${algorithm} is not available on this key store.`);
    const wrapKey = await this.wrappingKey(wrappingKeyId);
    const template = importedAesTemplate(keyLabel(ref.keyId, ref.version), keyObjectId(ref.keyId, ref.version));
    const oaep = oaepMechanism(algorithm.endsWith("_SHA_256") ? "sha256" : "sha1");
    const mod = this.device.mod;
    let padded = 0; // the material's length rounded up to 8 bytes, learnt without seeing it
    const handle = await this.device.runAsync(
      "unwrap key material",
      async (s) => {
        if (algorithm.startsWith("RSAES_OAEP_")) {
          padded = await this.probePaddedLength(s, (t) => mod.C_UnwrapKeyAsync(s, oaep, wrapKey, encrypted, t));
          const h = await mod.C_UnwrapKeyAsync(s, oaep, wrapKey, encrypted, template);
          retain(encrypted, template, oaep);
          return h;
        }
        const [modulus] = mod.C_GetAttributeValue(s, wrapKey, [{ type: pkcs11js.CKA_MODULUS }]);
        const k = modulus!.value!.length;
        if (encrypted.length <= k + 8) throw Object.assign(new Error("wrapped blob too short"), { code: CKR.ENCRYPTED_DATA_LEN_RANGE });
        const head = encrypted.subarray(0, k);
        const tail = encrypted.subarray(k);
        padded = tail.length - 8; // RFC 5649: the ciphertext is the padded plaintext plus one 8-byte block
        const ephTemplate = ephemeralKeyTemplate();
        const eph = await mod.C_UnwrapKeyAsync(s, oaep, wrapKey, head, ephTemplate);
        try {
          return await mod.C_UnwrapKeyAsync(s, { mechanism: CKM_AES_KEY_WRAP_KWP }, eph, tail, template);
        } finally {
          // WARNING: destroy the ephemeral key in this same session call, whatever happened: it can unwrap.
          mod.C_DestroyObject(s, eph);
          retain(head, tail, ephTemplate, template, oaep);
        }
      },
      classifyUnwrap,
    );
    try {
      // SoftHSM2 leaves CKA_VALUE_LEN of an unwrapped key at 0, so the length is established indirectly: the
      // padded length must be 32 (25–32 bytes) and the value must work as an AES key (16, 24 or 32 bytes only).
      if (padded !== 32 || !(await this.device.run("check imported key", (s) => aesUsable(mod, s, handle)))) throw wrongSize();
    } catch (err) {
      // Nothing may stay behind from a refused import.
      await this.device.run("destroy refused key material", (s) => mod.C_DestroyObject(s, handle));
      throw err;
    }
    this.objects.set(ref, { secret: handle });
  }

  /**
   * The classic key check value, AES-ECB of a zero block, computed by the device: it identifies material
   * without revealing it, and is kept only in the metadata store (never sent to clients).
   */
  async keyCheckValue(key: pkcs11js.Handle): Promise<Buffer> {
    return this.device.run("key check value", (s) => {
      this.device.mod.C_EncryptInit(s, { mechanism: pkcs11js.CKM_AES_ECB }, key);
      return Buffer.from(this.device.mod.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(16)));
    });
  }

  get outstandingWrappingKeys(): number {
    return this.wrapping.size;
  }

  async destroyExpiredWrappingKeys(now: Date): Promise<void> {
    if (!this.swept) {
      // Once per process: wrapping keys created before a restart, found by their label prefix in the key
      // store's start-up scan (one pass over the token; a search of our own would be another).
      for (const [label, list] of this.objects.others) {
        if (!label.startsWith(WRAP_PREFIX)) continue;
        for (const o of list) if (o.cls === pkcs11js.CKO_PRIVATE_KEY) this.wrapping.set(label.slice(WRAP_PREFIX.length), o.handle);
        this.objects.others.delete(label);
      }
      this.swept = true;
    }
    for (const [id, h] of this.wrapping) {
      if (Number(id.split(":")[1]) > now.getTime()) continue;
      await this.device.run("destroy wrapping key", (s) => this.device.mod.C_DestroyObject(s, h));
      this.wrapping.delete(id);
    }
  }

  /**
   * The length, rounded up to 8 bytes, of what an OAEP block unwraps to: it is unwrapped once more as an
   * extractable *session* object (visible to this process only), wrapped with AES-KWP under a throw-away
   * device key that can never leave the device, and both are destroyed. Only the wrapped blob's length is
   * used: the material stays inside the device, wrapped or not.
   */
  private async probePaddedLength(s: pkcs11js.Handle, unwrap: (t: pkcs11js.Template) => Promise<pkcs11js.Handle>): Promise<number> {
    const mod = this.device.mod;
    const kek = mod.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_WRAP, value: true },
    ]);
    let probe: pkcs11js.Handle | undefined;
    try {
      const t = probeTemplate();
      probe = await unwrap(t);
      retain(t);
      return mod.C_WrapKey(s, { mechanism: CKM_AES_KEY_WRAP_KWP }, kek, probe, Buffer.alloc(1024)).length - 8;
    } finally {
      // WARNING: both objects go in this same session call: the probe is extractable.
      if (probe !== undefined) mod.C_DestroyObject(s, probe);
      mod.C_DestroyObject(s, kek);
    }
  }

  private async wrappingKey(wrappingKeyId: string): Promise<pkcs11js.Handle> {
    const cached = this.wrapping.get(wrappingKeyId) ?? this.scanned(WRAP_PREFIX + wrappingKeyId, pkcs11js.CKO_PRIVATE_KEY);
    if (cached !== undefined) return cached;
    const [found] = await this.findByLabel(pkcs11js.CKO_PRIVATE_KEY, WRAP_PREFIX + wrappingKeyId);
    if (found === undefined) {
      throw new KmsError("ExpiredImportTokenException", "The wrapping key of these import parameters no longer exists; call GetParametersForImport again.");
    }
    this.wrapping.set(wrappingKeyId, found);
    return found;
  }

  /** Finds or (first use on this token) creates the MAC key; concurrent first uses share one promise. */
  private importTokenKey(): Promise<pkcs11js.Handle> {
    this.tokenKey ??= (async () => {
      // Seen at open, or made meanwhile by another process sharing the token (one search, once per process).
      const found = this.scanned(IMPORT_TOKEN_KEY_LABEL, pkcs11js.CKO_SECRET_KEY) ?? (await this.findByLabel(pkcs11js.CKO_SECRET_KEY, IMPORT_TOKEN_KEY_LABEL))[0];
      if (found !== undefined) return found;
      return this.device.run("generate import token key", (s) =>
        this.device.mod.C_GenerateKey(s, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, importTokenKeyTemplate()),
      );
    })().catch((err: unknown) => {
      this.tokenKey = undefined;
      throw err;
    });
    return this.tokenKey;
  }

  /** A handle the key store's start-up scan found under `label` (objects created before this process). */
  private scanned(label: string, cls: number): pkcs11js.Handle | undefined {
    return this.objects.others.get(label)?.find((o) => o.cls === cls)?.handle;
  }

  private findByLabel(cls: number, label: string): Promise<pkcs11js.Handle[]> {
    return this.find([
      { type: pkcs11js.CKA_CLASS, value: cls },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
  }

  private find(template: pkcs11js.Template): Promise<pkcs11js.Handle[]> {
    const mod = this.device.mod;
    return this.device.run("find objects", (s) => {
      mod.C_FindObjectsInit(s, template);
      try {
        const out: pkcs11js.Handle[] = [];
        for (let b = mod.C_FindObjects(s, 256); b.length > 0; b = mod.C_FindObjects(s, 256)) out.push(...b);
        return out;
      } finally {
        mod.C_FindObjectsFinal(s);
      }
    });
  }
}
