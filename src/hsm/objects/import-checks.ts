import { ECDH, createECDH, createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import pkcs11js from "pkcs11js";
import { KmsError } from "../../kms/errors.js";
import type { HmacKeySpec } from "../../kms/types.js";
import type { Curve } from "./mechanisms.js";
import { MAC_MECHANISMS } from "./mechanisms.js";
import { sha256Extend, sha256Padding } from "./sha256-extend.js";

/**
 * Checks of imported material that run on the device without the material ever leaving it, not even as
 * an extractable copy: its length, a check value, and (EC) its public key.
 */

const PREFIX_BYTES = 64; // one SHA-256 block: the state after it is fresh randomness, whatever the key
const SUFFIX = Buffer.from("p11kms length probe");

/**
 * The length of a secret key that is among `candidates`, else undefined. SoftHSM2 leaves CKA_VALUE_LEN of
 * an unwrapped key at 0 and refuses it in the unwrap template, so it is measured: the device digests
 * `prefix ‖ key` (C_DigestKey, allowed on sensitive keys), and for each candidate length L the digest of
 * `prefix ‖ key ‖ pad ‖ suffix` is predicted by SHA-256 length extension and compared with the device's.
 * Only the true length matches. The random prefix makes the digest worthless beyond this call.
 */
export function secretLength(mod: pkcs11js.PKCS11, s: pkcs11js.Handle, key: pkcs11js.Handle, candidates: readonly number[]): number | undefined {
  const prefix = randomBytes(PREFIX_BYTES);
  const digest = (tail?: Buffer): Buffer => {
    mod.C_DigestInit(s, { mechanism: pkcs11js.CKM_SHA256 });
    try {
      mod.C_DigestUpdate(s, prefix);
      mod.C_DigestKey(s, key);
      if (tail) mod.C_DigestUpdate(s, tail);
    } catch (err) {
      try {
        mod.C_DigestFinal(s, Buffer.alloc(32)); // ends the operation, so the session is clean for the next user
      } catch {
        // Already ended by the failure.
      }
      throw new KmsError(
        "UnsupportedOperationException",
        "This key store's device does not digest sensitive keys (C_DigestKey), which p11kms needs to check the length of imported material.",
        { cause: err },
      );
    }
    return Buffer.from(mod.C_DigestFinal(s, Buffer.alloc(32)));
  };
  const base = digest();
  try {
    for (const length of candidates) {
      const total = PREFIX_BYTES + length;
      if (digest(Buffer.concat([sha256Padding(total), SUFFIX])).equals(sha256Extend(base, total, SUFFIX))) return length;
    }
    return undefined;
  } finally {
    base.fill(0);
  }
}

const CHECK_INPUT = Buffer.from("p11kms key check value");

/**
 * Check value of AES material: the classic AES-ECB of a zero block (the first release recorded this, so it
 * stays). Undefined when the device does not take the value as an AES key.
 */
export function aesCheckValue(mod: pkcs11js.PKCS11, s: pkcs11js.Handle, key: pkcs11js.Handle): Buffer | undefined {
  try {
    mod.C_EncryptInit(s, { mechanism: pkcs11js.CKM_AES_ECB }, key);
  } catch {
    return undefined; // SoftHSM2 refuses lengths AES does not have here
  }
  return Buffer.from(mod.C_Encrypt(s, Buffer.alloc(16), Buffer.alloc(16)));
}

/**
 * Check value of HMAC material: its HMAC of a constant, and its length (HMAC pads short keys with zeros,
 * so K and K‖00 give the same tags but are different material).
 */
export function hmacCheckValue(mod: pkcs11js.PKCS11, s: pkcs11js.Handle, key: pkcs11js.Handle, spec: HmacKeySpec, length: number): Buffer {
  const m = MAC_MECHANISMS[`HMAC_SHA_${spec.slice(5)}` as keyof typeof MAC_MECHANISMS];
  mod.C_SignInit(s, { mechanism: m.ckm }, key);
  const tag = Buffer.from(mod.C_Sign(s, CHECK_INPUT, Buffer.alloc(m.bytes)));
  const len = Buffer.alloc(2);
  len.writeUInt16BE(length);
  return Buffer.concat([tag, len]);
}

/** Check value of a key pair: SHA-256 of its public key (which determines the private key). */
export function pairCheckValue(spki: Buffer): Buffer {
  return createHash("sha256").update(spki).digest();
}

const NODE_CURVES: Record<string, string> = { "P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1", secp256k1: "secp256k1" };

/**
 * The public point (uncompressed, 04 ‖ x ‖ y) of an EC private key in the device, which the unwrapped
 * PKCS#8 does not give: SoftHSM2 keeps no CKA_EC_POINT on private keys. ECDH of the key with the curve's
 * generator G is x(d·G), the public point's x; of the two points with that x, the one that verifies a
 * signature made by the key is the public key. `probe` must allow CKA_DERIVE and CKA_SIGN.
 */
export function ecPublicPoint(mod: pkcs11js.PKCS11, s: pkcs11js.Handle, probe: pkcs11js.Handle, curve: Curve): Buffer | undefined {
  const name = NODE_CURVES[curve.jwk]!;
  const generator = generatorOf(name, curve.fieldBytes);
  let derived: pkcs11js.Handle;
  try {
    derived = mod.C_DeriveKey(
      s,
      { mechanism: pkcs11js.CKM_ECDH1_DERIVE, parameter: { type: pkcs11js.CK_PARAMS_EC_DH, kdf: pkcs11js.CKD_NULL, publicData: generator } as pkcs11js.IParams },
      probe,
      [
        // The x coordinate of the public point: public, so readable.
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_SENSITIVE, value: false },
        { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        { type: pkcs11js.CKA_VALUE_LEN, value: curve.fieldBytes },
      ],
    );
  } catch (err) {
    throw new KmsError(
      "UnsupportedOperationException",
      "This key store's device cannot derive the public key of an imported EC key (CKM_ECDH1_DERIVE with a NULL KDF).",
      { cause: err },
    );
  }
  let x: Buffer;
  try {
    x = Buffer.from(mod.C_GetAttributeValue(s, derived, [{ type: pkcs11js.CKA_VALUE }])[0]!.value!);
  } finally {
    mod.C_DestroyObject(s, derived);
  }
  const message = randomBytes(32);
  mod.C_SignInit(s, { mechanism: pkcs11js.CKM_ECDSA }, probe);
  const signature = Buffer.from(mod.C_Sign(s, createHash("sha256").update(message).digest(), Buffer.alloc(2 * curve.fieldBytes)));
  for (const prefix of [0x02, 0x03]) {
    const point = ECDH.convertKey(Buffer.concat([Buffer.from([prefix]), x]), name, undefined, undefined, "uncompressed") as Buffer;
    const key = createPublicKey({
      key: { kty: "EC", crv: curve.jwk, x: point.subarray(1, 1 + curve.fieldBytes).toString("base64url"), y: point.subarray(1 + curve.fieldBytes).toString("base64url") },
      format: "jwk",
    });
    if (verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signature)) return point;
  }
  return undefined;
}

/** The curve's generator G: the public key of the private key 1. */
function generatorOf(name: string, fieldBytes: number): Buffer {
  const one = Buffer.alloc(fieldBytes);
  one[fieldBytes - 1] = 1;
  const e = createECDH(name);
  e.setPrivateKey(one);
  return e.getPublicKey();
}
