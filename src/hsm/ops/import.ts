import { createCipheriv, randomBytes, randomUUID } from "node:crypto";
import pkcs11js from "pkcs11js";
import { KmsError } from "../../kms/errors.js";
import { secretLengths, wrongLength } from "../../kms/import-material.js";
import type { UnwrapRequest } from "../../kms/ports.js";
import type { AsymmetricKeySpec, HmacKeySpec, KeySpec, UnwrapPath, WrappingAlgorithm, WrappingKeySpec } from "../../kms/types.js";
import { isAsymmetricSpec } from "../../kms/types.js";
import type { OaepFallbackSetting, ProbedCapabilities } from "../objects/capabilities.js";
import { derOctetString } from "../objects/der.js";
import { type Device, retain } from "../runtime/device.js";
import { aesCheckValue, ecPublicPoint, hmacCheckValue, pairCheckValue, secretLength } from "../objects/import-checks.js";
import {
  IMPORT_TOKEN_KEY_LABEL,
  WRAP_PREFIX,
  asSessionObject,
  ecProbeTemplate,
  ephemeralKeyTemplate,
  importTokenKeyTemplate,
  importedPairTemplates,
  importedSecretTemplate,
  wrappingKeyPairTemplates,
} from "../objects/import-templates.js";
import type { KeyObjectCache, KeyObjects } from "../runtime/key-objects.js";
import { CKM_AES_KEY_WRAP_KWP, CURVES, oaepMechanism, rsaBits } from "../objects/mechanisms.js";
import { oaepDecode } from "../objects/oaep.js";
import { readSpki } from "../objects/public-key.js";
import { CKR, isVerifyFailure, rvOf } from "../runtime/return-values.js";
import { keyLabel, keyObjectId } from "../objects/templates.js";

/** Bit length of a big-endian unsigned integer (an RSA modulus). */
function bitLength(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  return i === n.length ? 0 : (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
}

/** CK_RVs of C_UnwrapKey that mean "this wrapped blob does not unwrap under this key". */
const UNDECRYPTABLE = new Set<number>([
  CKR.GENERAL_ERROR, // SoftHSM2's answer to a bad OAEP padding and to a failed AES-KWP integrity check
  CKR.DATA_INVALID,
  CKR.DATA_LEN_RANGE,
  CKR.ENCRYPTED_DATA_INVALID,
  CKR.ENCRYPTED_DATA_LEN_RANGE,
  0x110, // CKR_WRAPPED_KEY_INVALID
  0x112, // CKR_WRAPPED_KEY_LEN_RANGE
]);
/** CK_RVs that mean "it unwrapped, but is no valid key of the template's type". */
const WRONG_MATERIAL = new Set<number>([
  CKR.FUNCTION_FAILED, // SoftHSM2: the PKCS#8 does not decode as a private key of the template's type
  0x13, // ATTRIBUTE_VALUE_INVALID
  0x62, // KEY_SIZE_RANGE
  0xd1, // TEMPLATE_INCONSISTENT
]);
const KEY_FUNCTION_NOT_PERMITTED = 0x68;

const invalidCiphertext = () =>
  new KmsError("InvalidCiphertextException", "The wrapped key material could not be unwrapped with these import parameters.");

const wrongPair = (spec: KeySpec) =>
  new KmsError("IncorrectKeyMaterialException", `The key material is invalid: ${spec} key material must be a DER-encoded PKCS#8 private key of that spec.`);

function classifier(spec: KeySpec) {
  return (rv: number | undefined): KmsError | undefined => {
    if (rv === undefined) return undefined;
    if (UNDECRYPTABLE.has(rv)) return invalidCiphertext();
    if (WRONG_MATERIAL.has(rv)) return isAsymmetricSpec(spec) ? wrongPair(spec) : wrongLength(spec);
    if (rv === KEY_FUNCTION_NOT_PERMITTED) {
      // The wrapping key was made for the other unwrap path (the key store's configuration changed since).
      return new KmsError("InvalidImportTokenException", "These import parameters no longer fit this key store's configuration; call GetParametersForImport again.");
    }
    return undefined;
  };
}

/** Unwraps the material (several times, if needed) within one session call; `close` destroys what it holds. */
interface Unwrapper {
  unwrap(template: pkcs11js.Template): Promise<pkcs11js.Handle>;
  close(): void;
}

/** What an unwrap left: the check value, and the objects (token objects unless compareOnly). */
interface Unwrapped {
  checkValue: Buffer;
  objects: KeyObjects;
}

/** RFC 5649's alternative initial value, which node:crypto's id-aes256-wrap-pad expects explicitly. */
const KWP_IV = Buffer.from("a65959a6", "hex");

/** The expiry (ms) and, for labels since the per-key bound, the key id of a wrapping key id. */
function parseWrappingKeyId(id: string): { keyId: string | undefined; expiresAt: number } {
  const parts = id.split(":");
  return { keyId: parts.length === 3 ? parts[0] : undefined, expiresAt: Number(parts.at(-1)) };
}

/**
 * BYOK on the device: wrapping key pairs, the import-token MAC key, and the unwrap itself. Material moves
 * only as C_UnwrapKey inputs (wrapped) and token objects (sensitive, non-extractable); for
 * RSA_AES_KEY_WRAP_* the ephemeral AES key is a session object destroyed in the same session call, because
 * SoftHSM2 has no CKM_RSA_AES_KEY_WRAP to do both steps at once. The one exception is the software path
 * (SHA-256 OAEP on a device without it, where configuration allows): there the OAEP decoding runs here.
 */
export class ImportOps {
  /** Wrapping private keys by wrapping key id (`<key id>:<uuid>:<expiry ms>`); filled on creation and on lookup. */
  private readonly wrapping = new Map<string, pkcs11js.Handle>();
  private tokenKey: Promise<pkcs11js.Handle> | undefined;
  private swept = false;

  constructor(
    private readonly device: Device,
    private readonly objects: KeyObjectCache,
    private readonly caps: ProbedCapabilities,
    private readonly fallback: OaepFallbackSetting,
  ) {}

  /**
   * SHA-1 and (where the device does it) SHA-256 OAEP unwrap on the device. SHA-256 on a device without it
   * takes the software path only where keyStores[].importOaepSha256Fallback allows ("auto": software tokens
   * only, whose keys live in the process's memory anyway).
   */
  unwrapPath(algorithm: WrappingAlgorithm): UnwrapPath | undefined {
    if (!algorithm.endsWith("_SHA_256") || this.caps.oaepSha256OnDevice) return "device";
    if (!this.caps.rawRsa) return undefined;
    if (this.fallback === "allow" || (this.fallback === "auto" && this.caps.softwareToken)) return "software";
    return undefined;
  }

  async createWrappingKey(keyId: string, spec: WrappingKeySpec, algorithm: WrappingAlgorithm, expiresAt: Date): Promise<{ wrappingKeyId: string; publicKey: Buffer }> {
    const path = this.unwrapPath(algorithm);
    if (!path) throw new KmsError("UnsupportedOperationException", `${algorithm} is not available on this key store.`);
    const wrappingKeyId = `${keyId}:${randomUUID()}:${expiresAt.getTime()}`;
    const t = wrappingKeyPairTemplates(rsaBits(spec)!, WRAP_PREFIX + wrappingKeyId, this.caps.allowedMechanisms, path);
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

  /** See {@link KeyImportOperations.unwrapKeyMaterial}: everything happens in one session call. */
  async unwrapKeyMaterial(req: UnwrapRequest): Promise<{ checkValue: Buffer; unwrapPath: UnwrapPath }> {
    const { ref } = req;
    if (!req.compareOnly && this.objects.has(ref)) throw new Error(`key object ${keyLabel(ref.keyId, ref.version)} already exists`);
    const path = this.unwrapPath(req.algorithm);
    if (!path) throw new KmsError("UnsupportedOperationException", `${req.algorithm} is not available on this key store.`);
    const wrapKey = await this.wrappingKey(req.wrappingKeyId);
    const result = await this.device.runAsync(
      "unwrap key material",
      async (s) => {
        const u = await this.unwrapper(s, wrapKey, req.algorithm, path, req.encrypted);
        try {
          return isAsymmetricSpec(req.keySpec) ? await this.unwrapPair(s, u, req, req.keySpec) : await this.unwrapSecret(s, u, req);
        } finally {
          // WARNING: the ephemeral AES key can unwrap: it goes in this same session call, whatever happened.
          u.close();
        }
      },
      classifier(req.keySpec),
    );
    if (!req.compareOnly) this.objects.set(ref, result.objects);
    return { checkValue: result.checkValue, unwrapPath: path };
  }

  /**
   * The unwrap steps of an algorithm and path. RSAES_OAEP_* on the device is one C_UnwrapKey. RSA_AES_KEY_WRAP_*
   * first recovers the ephemeral AES key as a session object (OAEP unwrap on the device; on the software
   * path raw RSA on the device and OAEP decoding here, then C_CreateObject), which then unwraps the
   * material with AES-KWP. RSAES_OAEP_* on the software path decodes the material here and at once wraps
   * it under a fresh one-off AES key, so it enters the device the same way; the plaintext buffers are
   * wiped as soon as they are consumed.
   */
  private async unwrapper(s: pkcs11js.Handle, wrapKey: pkcs11js.Handle, algorithm: WrappingAlgorithm, path: UnwrapPath, encrypted: Buffer): Promise<Unwrapper> {
    const mod = this.device.mod;
    const oaep = oaepMechanism(algorithm.endsWith("_SHA_256") ? "sha256" : "sha1");
    const [modulus] = mod.C_GetAttributeValue(s, wrapKey, [{ type: pkcs11js.CKA_MODULUS }]);
    const k = modulus!.value!.length;
    if (algorithm.startsWith("RSAES_OAEP_")) {
      if (path === "device") {
        return {
          unwrap: async (t) => {
            const h = await mod.C_UnwrapKeyAsync(s, oaep, wrapKey, encrypted, t);
            retain(encrypted, t, oaep);
            return h;
          },
          close: () => undefined,
        };
      }
      const material = await this.softwareOaep(s, wrapKey, encrypted, k);
      // An empty key wraps to an empty blob, which the device would answer with an error of its own.
      if (material.length === 0) throw new KmsError("IncorrectKeyMaterialException", "The key material is empty.");
      const ephemeral = randomBytes(32);
      let blob: Buffer;
      try {
        const c = createCipheriv("id-aes256-wrap-pad", ephemeral, KWP_IV);
        blob = Buffer.concat([c.update(material), c.final()]);
      } finally {
        material.fill(0);
      }
      return this.kwpUnwrapper(s, this.createEphemeral(s, ephemeral), blob);
    }
    if (encrypted.length <= k + 8) throw invalidCiphertext();
    const head = encrypted.subarray(0, k);
    const tail = encrypted.subarray(k);
    let eph: pkcs11js.Handle;
    if (path === "device") {
      const t = ephemeralKeyTemplate();
      eph = await mod.C_UnwrapKeyAsync(s, oaep, wrapKey, head, t);
      retain(head, t, oaep);
    } else {
      eph = this.createEphemeral(s, await this.softwareOaep(s, wrapKey, head, k));
    }
    return this.kwpUnwrapper(s, eph, tail);
  }

  private kwpUnwrapper(s: pkcs11js.Handle, eph: pkcs11js.Handle, blob: Buffer): Unwrapper {
    const mod = this.device.mod;
    return {
      unwrap: async (t) => {
        const h = await mod.C_UnwrapKeyAsync(s, { mechanism: CKM_AES_KEY_WRAP_KWP }, eph, blob, t);
        retain(blob, t);
        return h;
      },
      close: () => mod.C_DestroyObject(s, eph),
    };
  }

  /**
   * RSAES-OAEP-SHA-256 decryption for the software path: raw RSA (CKM_RSA_X_509) on the device, EME-OAEP
   * decoding in constant time here (oaep.ts). Every failure is the same InvalidCiphertextException.
   */
  private async softwareOaep(s: pkcs11js.Handle, wrapKey: pkcs11js.Handle, block: Buffer, k: number): Promise<Buffer> {
    if (block.length !== k) throw invalidCiphertext();
    const mod = this.device.mod;
    const out = Buffer.alloc(k);
    mod.C_DecryptInit(s, { mechanism: pkcs11js.CKM_RSA_X_509 }, wrapKey);
    const em = await mod.C_DecryptAsync(s, block, out);
    retain(block, out);
    try {
      const message = oaepDecode(em, k, "sha256");
      if (!message) throw invalidCiphertext();
      return message;
    } finally {
      out.fill(0);
    }
  }

  /** The ephemeral AES key from its value (software path); the value is wiped once the device has it. */
  private createEphemeral(s: pkcs11js.Handle, value: Buffer): pkcs11js.Handle {
    try {
      if (value.length !== 16 && value.length !== 24 && value.length !== 32) throw invalidCiphertext();
      return this.device.mod.C_CreateObject(s, [...ephemeralKeyTemplate(), { type: pkcs11js.CKA_VALUE, value }]);
    } finally {
      value.fill(0);
    }
  }

  /**
   * AES or HMAC material: unwrapped with the generated key's template (without CKA_VALUE_LEN, which
   * SoftHSM2 refuses there and leaves at 0), then its length is measured on the device (secretLength) and
   * must be one the spec allows; the check value also proves the device takes it as a key of its type.
   */
  private async unwrapSecret(s: pkcs11js.Handle, u: Unwrapper, req: UnwrapRequest): Promise<Unwrapped> {
    const mod = this.device.mod;
    const spec = req.keySpec as "SYMMETRIC_DEFAULT" | HmacKeySpec;
    const template = importedSecretTemplate(spec, keyLabel(req.ref.keyId, req.ref.version), keyObjectId(req.ref.keyId, req.ref.version), this.caps.allowedMechanisms);
    const h = await u.unwrap(req.compareOnly ? asSessionObject(template) : template);
    let keep = false;
    try {
      const range = secretLengths(spec)!;
      const candidates = Array.from({ length: range.max - range.min + 1 }, (_, i) => range.min + i);
      const length = secretLength(mod, s, h, candidates);
      if (length === undefined) throw wrongLength(spec);
      const checkValue = spec === "SYMMETRIC_DEFAULT" ? aesCheckValue(mod, s, h) : hmacCheckValue(mod, s, h, spec, length);
      if (!checkValue) throw wrongLength(spec);
      keep = !req.compareOnly;
      return { checkValue, objects: { secret: h } };
    } finally {
      if (!keep) mod.C_DestroyObject(s, h); // refused material, or a comparison copy: nothing stays behind
    }
  }

  /**
   * A private key (PKCS#8 DER) and its public half. RSA: the modulus and exponent are public attributes of
   * the unwrapped private key. EC: SoftHSM2 keeps no public point on a private key, so a session copy that
   * may derive and sign computes it (ecPublicPoint) and is destroyed. The public key object is created with
   * the generated pair's public template, so GetPublicKey, Verify and Encrypt work as for generated keys.
   */
  private async unwrapPair(s: pkcs11js.Handle, u: Unwrapper, req: UnwrapRequest, spec: AsymmetricKeySpec): Promise<Unwrapped> {
    const mod = this.device.mod;
    const policy = { restrict: this.caps.allowedMechanisms, rawRsa: this.caps.rsaOaepSha256 === "fallback" };
    const t = importedPairTemplates(spec, req.keyUsage, keyLabel(req.ref.keyId, req.ref.version), keyObjectId(req.ref.keyId, req.ref.version), policy);
    const session = (x: pkcs11js.Template) => (req.compareOnly ? asSessionObject(x) : x);
    const made: pkcs11js.Handle[] = [];
    let keep = false;
    try {
      let publicValues: pkcs11js.Template;
      const bits = rsaBits(spec);
      if (bits !== undefined) {
        const priv = await u.unwrap(session(t.privateKey));
        made.push(priv);
        const [n, e] = mod.C_GetAttributeValue(s, priv, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
        if (bitLength(n!.value!) !== bits) throw wrongPair(spec);
        publicValues = [
          { type: pkcs11js.CKA_MODULUS, value: n!.value! },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: e!.value! },
        ];
      } else {
        const curve = CURVES[spec as keyof typeof CURVES];
        const probe = await u.unwrap(ecProbeTemplate());
        let point: Buffer | undefined;
        try {
          const [params] = mod.C_GetAttributeValue(s, probe, [{ type: pkcs11js.CKA_EC_PARAMS }]);
          if (!params?.value?.equals(curve.oid)) throw wrongPair(spec);
          point = ecPublicPoint(mod, s, probe, curve);
        } finally {
          mod.C_DestroyObject(s, probe);
        }
        if (!point) throw wrongPair(spec);
        made.push(await u.unwrap(session(t.privateKey)));
        publicValues = [{ type: pkcs11js.CKA_EC_POINT, value: derOctetString(point) }];
      }
      const pub = mod.C_CreateObject(s, session(t.publicKey(publicValues)));
      made.push(pub);
      const spki = readSpki(mod, s, pub, spec);
      keep = !req.compareOnly;
      return { checkValue: pairCheckValue(spki), objects: { privateKey: made[0]!, publicKey: pub, spki } };
    } finally {
      if (!keep) for (const h of made) mod.C_DestroyObject(s, h);
    }
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
    for (const id of [...this.wrapping.keys()]) {
      if (parseWrappingKeyId(id).expiresAt <= now.getTime()) await this.destroyWrappingKey(id);
    }
  }

  /**
   * The per-key bound: all but the newest `keep` sets of one key go (a later token of theirs then answers
   * ExpiredImportTokenException). Newest = latest expiry; equal expiries keep creation order.
   */
  async destroyOldWrappingKeys(keyId: string, keep: number): Promise<void> {
    const mine = [...this.wrapping.keys()].filter((id) => parseWrappingKeyId(id).keyId === keyId);
    mine.sort((a, b) => parseWrappingKeyId(a).expiresAt - parseWrappingKeyId(b).expiresAt);
    for (const id of mine.slice(0, Math.max(0, mine.length - keep))) await this.destroyWrappingKey(id);
  }

  private async destroyWrappingKey(id: string): Promise<void> {
    const h = this.wrapping.get(id);
    if (h === undefined) return;
    await this.device.run("destroy wrapping key", (s) => this.device.mod.C_DestroyObject(s, h));
    this.wrapping.delete(id);
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
