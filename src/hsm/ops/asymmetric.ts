import { constants, createPublicKey, publicEncrypt } from "node:crypto";
import pkcs11js from "pkcs11js";
import { KmsError } from "../../kms/errors.js";
import type { KeyMaterialRef } from "../../kms/ports.js";
import type { AsymmetricKeySpec, EncryptionAlgorithm, KeyUsage, SigningAlgorithm } from "../../kms/types.js";
import type { ProbedCapabilities } from "../objects/capabilities.js";
import { DIGEST_INFO_PREFIX, ecdsaDerToRaw, ecdsaRawToDer } from "../objects/der.js";
import { type Device, retain } from "../runtime/device.js";
import type { KeyObjectCache } from "../runtime/key-objects.js";
import { CKK_EC_EDWARDS, CURVES, oaepMechanism, schemeMechanismName, signingMechanism, signingScheme, type SigningScheme } from "../objects/mechanisms.js";
import { oaepDecode } from "../objects/oaep.js";
import { readSpki } from "../objects/public-key.js";
import { CKR, isRsaDecryptFailure, isVerifyFailure, rvOf } from "../runtime/return-values.js";
import type { SessionCopies } from "../runtime/session-copies.js";
import type { ThreadSession } from "../runtime/thread-session.js";
import { keyLabel, keyObjectId, keyPairTemplates } from "../objects/templates.js";

/** What the public half tells about a pair, read once: its spec, SPKI, and output sizes. */
interface PairInfo {
  readonly spec: AsymmetricKeySpec;
  readonly spki: Buffer;
  /** RSA modulus length in bytes (signature and ciphertext size); 0 for curves. */
  readonly modulusBytes: number;
  /** Raw signature size: modulus bytes, 2 × field size for ECDSA, 64 for Ed25519. */
  readonly signatureBytes: number;
}

const invalidCiphertext = () =>
  new KmsError("InvalidCiphertextException", "The ciphertext is invalid or was not encrypted under this key with this algorithm.");

const noRawRsa = () =>
  new KmsError(
    "UnsupportedOperationException",
    "This key cannot decrypt RSAES_OAEP_SHA_256 here: it was created while the raw-RSA fallback was not allowed.",
  );

/**
 * Key pairs on the device. Every private-key operation and key generation runs through pkcs11js's *Async
 * calls on the libuv thread pool: an RSA-3072 signature would otherwise block the event loop ~2 ms.
 *
 * Only the operation itself can move: pkcs11js has no async C_*Init, and SoftHSM2 does real work there
 * (measured: C_SignInit on a token ECDSA key ~39 µs, ~22 µs on a session copy, the signature ~23 µs). For
 * ECDSA that Init, on the event loop, is what limits Sign throughput (docs/asymmetric-keys.md, Performance).
 */
const EMPTY = Buffer.alloc(0);

export class AsymmetricOps {
  private readonly info = new Map<string, PairInfo>();

  constructor(
    private readonly device: Device,
    private readonly objects: KeyObjectCache,
    private readonly caps: ProbedCapabilities,
    private readonly copies?: SessionCopies,
    /** When set, P-256 signatures run on the device thread (see device-thread.ts). */
    private readonly thread?: ThreadSession,
  ) {}

  async generateKeyPair(ref: KeyMaterialRef, spec: AsymmetricKeySpec, usage: KeyUsage): Promise<void> {
    if (this.objects.has(ref)) throw new Error(`key objects ${keyLabel(ref.keyId, ref.version)} already exist`);
    const policy = { restrict: this.caps.allowedMechanisms, rawRsa: this.caps.rsaOaepSha256 === "fallback" };
    const t = keyPairTemplates(spec, usage, keyLabel(ref.keyId, ref.version), keyObjectId(ref.keyId, ref.version), policy);
    const pair = await this.device.runAsync("generate key pair", async (s) => {
      const p = await this.device.mod.C_GenerateKeyPairAsync(s, t.mechanism, t.publicKey, t.privateKey);
      retain(t);
      return p;
    });
    this.objects.set(ref, { privateKey: pair.privateKey, publicKey: pair.publicKey });
  }

  async getPublicKey(ref: KeyMaterialRef): Promise<Buffer> {
    return Buffer.from((await this.pairInfo(ref)).spki);
  }

  async sign(ref: KeyMaterialRef, algorithm: SigningAlgorithm, input: Buffer): Promise<Buffer> {
    const info = await this.pairInfo(ref);
    const label = keyLabel(ref.keyId, ref.version);
    const o = this.objects.getByLabel(label);
    const token = this.half(ref, "privateKey");
    const scheme = signingScheme(algorithm);
    const data = signedData(scheme, input);
    const out = Buffer.alloc(info.signatureBytes);
    const mech = signingMechanism(scheme);
    if (info.spec === "ECC_NIST_P256" && this.copies && this.thread?.offload()) {
      // On the device thread, batched with the other calls of this event-loop turn; the copy is pinned so
      // that dropping it meanwhile cannot destroy it under the thread.
      const thread = this.thread;
      const copies = this.copies;
      const key = { label, state: o!, half: "privateKey" as const, token };
      const job = { kind: "sign" as const, mechanism: mech.mechanism, iv: EMPTY, aad: EMPTY, input: data, outputBytes: info.signatureBytes };
      const sig = await this.device.runDetached("sign", () => thread.runOnKey(copies, key, job), undefined, "ECDSA");
      return ecdsaRawToDer(sig);
    }
    if (info.spec === "ECC_NIST_P256") {
      // Init + sign on a session copy is ~30 µs of device work: cheaper on the event loop than the 40–80 µs
      // hop to the thread pool (docs/benchmarks.md). The copy is used only on this synchronous path, so it
      // cannot be evicted between C_SignInit and C_Sign.
      const sig = await this.device.run("sign", (s) => {
        const key = this.copies?.pick(label, o!, "privateKey", token) ?? token;
        try {
          this.device.mod.C_SignInit(s, mech, key);
        } catch (err) {
          if (!this.copies?.isLostCopy(key, token, err)) throw err;
          this.copies.lost();
          this.device.mod.C_SignInit(s, mech, token);
        }
        return this.device.mod.C_Sign(s, data, out);
      }, undefined, "ECDSA");
      return ecdsaRawToDer(sig);
    }
    // Slow signatures (RSA, P-384/P-521, secp256k1, Ed25519) run on the thread pool, on the token object.
    const sig = await this.device.runAsync("sign", async (s) => {
      this.device.mod.C_SignInit(s, mech, token);
      const r = await this.device.mod.C_SignAsync(s, data, out);
      retain(data, out);
      return r;
    }, undefined, schemeMechanismName(scheme));
    return scheme.kind === "ecdsa" ? ecdsaRawToDer(sig) : Buffer.from(sig);
  }

  async verify(ref: KeyMaterialRef, algorithm: SigningAlgorithm, input: Buffer, signature: Buffer): Promise<boolean> {
    const info = await this.pairInfo(ref);
    const key = this.half(ref, "publicKey");
    const scheme = signingScheme(algorithm);
    const sig = scheme.kind === "ecdsa" ? ecdsaDerToRaw(signature, info.signatureBytes / 2) : signature;
    if (!sig) return false; // not a strictly encoded DER signature: invalid without asking the device
    const data = signedData(scheme, input);
    return this.device.runAsync("verify", async (s) => {
      this.device.mod.C_VerifyInit(s, signingMechanism(scheme), key);
      try {
        return await this.device.mod.C_VerifyAsync(s, data, sig);
      } catch (err) {
        if (isVerifyFailure(rvOf(err))) return false; // C_Verify ends the operation either way
        throw err;
      } finally {
        retain(data, sig);
      }
    }, undefined, schemeMechanismName(scheme));
  }

  async encryptRsa(ref: KeyMaterialRef, algorithm: EncryptionAlgorithm, plaintext: Buffer): Promise<Buffer> {
    const info = await this.pairInfo(ref);
    const hash = oaepHash(algorithm);
    if (hash === "sha256" && !this.caps.oaepSha256OnDevice) {
      // Encryption needs only the public key: doing it here where the device cannot is no loss of protection.
      return publicEncrypt(
        { key: createPublicKey({ key: info.spki, format: "der", type: "spki" }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        plaintext,
      );
    }
    const key = this.half(ref, "publicKey");
    const out = Buffer.alloc(info.modulusBytes);
    return this.device.runAsync("rsa encrypt", async (s) => {
      this.device.mod.C_EncryptInit(s, oaepMechanism(hash), key);
      const r = await this.device.mod.C_EncryptAsync(s, plaintext, out);
      retain(plaintext, out);
      return Buffer.from(r);
    }, undefined, "RSA_PKCS_OAEP");
  }

  /**
   * RSAES-OAEP decryption. RSAES_OAEP_SHA_256 on a device without it uses the configured fallback: raw
   * RSA on the device, OAEP decoding in constant time here. Every failure is the same
   * InvalidCiphertextException, whichever step failed.
   */
  async decryptRsa(ref: KeyMaterialRef, algorithm: EncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    const info = await this.pairInfo(ref);
    const key = this.half(ref, "privateKey");
    const hash = oaepHash(algorithm);
    if (ciphertext.length !== info.modulusBytes) throw invalidCiphertext();
    const path = hash === "sha1" ? "device" : this.caps.rsaOaepSha256;
    if (path === "unsupported") {
      throw new KmsError(
        "UnsupportedOperationException",
        "This key store cannot decrypt RSAES_OAEP_SHA_256: the device lacks it and keyStores[].rsaOaepSha256Fallback does not allow the fallback.",
      );
    }
    const out = Buffer.alloc(info.modulusBytes);
    const mechanism = path === "device" ? oaepMechanism(hash) : { mechanism: pkcs11js.CKM_RSA_X_509 };
    const result = await this.device.runAsync(
      "rsa decrypt",
      async (s) => {
        this.device.mod.C_DecryptInit(s, mechanism, key);
        const r = await this.device.mod.C_DecryptAsync(s, ciphertext, out);
        retain(ciphertext, out);
        return r;
      },
      (rv) => {
        if (isRsaDecryptFailure(rv)) return invalidCiphertext();
        // The key was made while the fallback was not in use, so it may not do raw RSA (CKA_ALLOWED_MECHANISMS).
        if (path === "fallback" && rv === CKR.MECHANISM_INVALID) return noRawRsa();
        return undefined;
      },
      path === "device" ? "RSA_PKCS_OAEP" : "RSA_X_509",
    );
    try {
      if (path === "device") return Buffer.from(result);
      const plaintext = oaepDecode(result, info.modulusBytes, "sha256");
      if (!plaintext) throw invalidCiphertext();
      return plaintext;
    } finally {
      out.fill(0);
    }
  }

  /** The spec, SPKI and sizes of a pair, from its public key object; cached (public keys never change). */
  private async pairInfo(ref: KeyMaterialRef): Promise<PairInfo> {
    const label = keyLabel(ref.keyId, ref.version);
    const cached = this.info.get(label);
    if (cached) return cached;
    const pub = this.half(ref, "publicKey");
    const info = await this.device.run("read public key", (s) => describePublicKey(this.device.mod, s, pub));
    this.info.set(label, info);
    return info;
  }

  forget(ref: KeyMaterialRef): void {
    this.info.delete(keyLabel(ref.keyId, ref.version));
  }

  private half(ref: KeyMaterialRef, which: "privateKey" | "publicKey"): pkcs11js.Handle {
    const h = this.objects.get(ref)?.[which];
    if (h === undefined) {
      throw new KmsError("KMSInvalidStateException", `The key material of ${ref.keyId} is not available in its key store.`);
    }
    return h;
  }
}

function describePublicKey(mod: pkcs11js.PKCS11, s: pkcs11js.Handle, pub: pkcs11js.Handle): PairInfo {
  const keyType = mod.C_GetAttributeValue(s, pub, [{ type: pkcs11js.CKA_KEY_TYPE }])[0]!.value!.readUIntLE(0, 4);
  if (keyType === pkcs11js.CKK_RSA) {
    const n = mod.C_GetAttributeValue(s, pub, [{ type: pkcs11js.CKA_MODULUS }])[0]!.value!;
    const modulusBytes = n.length - (n[0] === 0 ? 1 : 0);
    const spec = `RSA_${modulusBytes * 8}` as AsymmetricKeySpec;
    return { spec, spki: readSpki(mod, s, pub, spec), modulusBytes, signatureBytes: modulusBytes };
  }
  const params = mod.C_GetAttributeValue(s, pub, [{ type: pkcs11js.CKA_EC_PARAMS }])[0]!.value!;
  const entry = Object.entries(CURVES).find(([, c]) => c.oid.equals(params));
  // SoftHSM2 also accepts the printable curve name for Ed25519 parameters; treat any Edwards key as Ed25519.
  const spec = (entry?.[0] ?? (keyType === CKK_EC_EDWARDS ? "ECC_NIST_EDWARDS25519" : undefined)) as AsymmetricKeySpec | undefined;
  if (!spec) throw new Error(`unsupported EC parameters ${params.toString("hex")}`);
  const field = CURVES[spec as keyof typeof CURVES].fieldBytes;
  return { spec, spki: readSpki(mod, s, pub, spec), modulusBytes: 0, signatureBytes: 2 * field };
}

/** PKCS#1 v1.5 signs DigestInfo ‖ digest with CKM_RSA_PKCS; every other scheme signs its input as is. */
function signedData(scheme: SigningScheme, input: Buffer): Buffer {
  if (scheme.kind !== "rsa-pkcs1" || scheme.hash === "sha1") return input;
  return Buffer.concat([DIGEST_INFO_PREFIX[scheme.hash], input]);
}

function oaepHash(algorithm: EncryptionAlgorithm): "sha1" | "sha256" {
  if (algorithm === "RSAES_OAEP_SHA_1") return "sha1";
  if (algorithm === "RSAES_OAEP_SHA_256") return "sha256";
  throw new Error(`not an RSA encryption algorithm: ${algorithm}`);
}
