import { constants, createPublicKey, publicEncrypt } from "node:crypto";
import pkcs11js from "pkcs11js";
import type { KeyStoreCapabilities } from "../../kms/ports.js";
import type { KeySpec, RsaOaepSha256Path } from "../../kms/types.js";
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, oaepMechanism, rsaBits } from "./mechanisms.js";
import { mechanismList } from "./templates.js";

/** keyStores[].rsaOaepSha256Fallback: "auto" allows the fallback on software tokens only. */
export type OaepFallbackSetting = "auto" | "allow" | "deny";

/** Capabilities plus what was learnt about the token, for the start-up log line. */
export interface ProbedCapabilities extends KeyStoreCapabilities {
  readonly softwareToken: boolean;
  readonly oaepSha256OnDevice: boolean;
  /** The token lists raw RSA (CKM_RSA_X_509), which the OAEP-SHA-256 software paths need. */
  readonly rawRsa: boolean;
  /** The token enforces CKA_ALLOWED_MECHANISMS, so new keys can be limited to their mechanisms. */
  readonly allowedMechanisms: boolean;
}

/** Token manufacturers/models that are software, where raw RSA in the process costs no hardware guarantee. */
const SOFTWARE_TOKENS = /softhsm|kryoptic/i;

/** {@link probeCapabilities} on a session of its own, closed afterwards, so nothing it tried can linger in a pool. */
export function probeOnOwnSession(mod: pkcs11js.PKCS11, slot: pkcs11js.Handle, fallback: OaepFallbackSetting): ProbedCapabilities {
  const session = mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    return probeCapabilities(mod, slot, session, fallback);
  } finally {
    mod.C_CloseSession(session);
  }
}

/**
 * Probes the token once, at open: the mechanism list decides which key specs it can serve, and a real
 * operation decides whether it can do RSAES_OAEP_SHA_256 (SoftHSM2 2.6.1 lists CKM_RSA_PKCS_OAEP but
 * accepts only SHA-1 parameters, so the list alone would lie).
 */
export function probeCapabilities(
  mod: pkcs11js.PKCS11,
  slot: pkcs11js.Handle,
  session: pkcs11js.Handle,
  fallback: OaepFallbackSetting,
): ProbedCapabilities {
  const mechs = new Set(mod.C_GetMechanismList(slot));
  const has = (...m: number[]) => m.every((x) => mechs.has(x));
  const rsaMax = has(pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN)
    ? mod.C_GetMechanismInfo(slot, pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN).maxKeySize
    : 0;

  const keySpecs: KeySpec[] = [];
  if (has(pkcs11js.CKM_AES_KEY_GEN, pkcs11js.CKM_AES_GCM)) keySpecs.push("SYMMETRIC_DEFAULT");
  for (const spec of ["RSA_2048", "RSA_3072", "RSA_4096"] as const) if (rsaMax >= rsaBits(spec)!) keySpecs.push(spec);
  if (has(pkcs11js.CKM_EC_KEY_PAIR_GEN, pkcs11js.CKM_ECDSA)) {
    keySpecs.push("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1");
  }
  if (has(CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA)) keySpecs.push("ECC_NIST_EDWARDS25519");
  const hmac = [
    ["HMAC_224", pkcs11js.CKM_SHA224_HMAC],
    ["HMAC_256", pkcs11js.CKM_SHA256_HMAC],
    ["HMAC_384", pkcs11js.CKM_SHA384_HMAC],
    ["HMAC_512", pkcs11js.CKM_SHA512_HMAC],
  ] as const;
  for (const [spec, m] of hmac) if (has(pkcs11js.CKM_GENERIC_SECRET_KEY_GEN, m)) keySpecs.push(spec);

  const info = mod.C_GetTokenInfo(slot);
  const softwareToken = SOFTWARE_TOKENS.test(`${info.manufacturerID} ${info.model}`);
  const oaepSha256OnDevice = has(pkcs11js.CKM_RSA_PKCS_OAEP) && rsaMax > 0 && oaepSha256Works(mod, session);
  let rsaOaepSha256: RsaOaepSha256Path = "unsupported";
  if (oaepSha256OnDevice) rsaOaepSha256 = "device";
  else if (has(pkcs11js.CKM_RSA_X_509) && (fallback === "allow" || (fallback === "auto" && softwareToken))) {
    rsaOaepSha256 = "fallback";
  }
  const rawRsa = has(pkcs11js.CKM_RSA_X_509);
  return { keySpecs, rsaOaepSha256, softwareToken, oaepSha256OnDevice, rawRsa, allowedMechanisms: enforcesAllowedMechanisms(mod, session) };
}

/**
 * Whether the token enforces CKA_ALLOWED_MECHANISMS: a session AES key allowed only AES-GCM must refuse
 * AES-CBC. A token that rejects the attribute, or ignores it, gets keys without it.
 */
function enforcesAllowedMechanisms(mod: pkcs11js.PKCS11, session: pkcs11js.Handle): boolean {
  let key: pkcs11js.Handle | undefined;
  try {
    key = mod.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_ALLOWED_MECHANISMS, value: mechanismList(pkcs11js.CKM_AES_GCM) },
    ]);
  } catch {
    return false;
  }
  try {
    try {
      mod.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_CBC_PAD, parameter: Buffer.alloc(16) }, key);
    } catch {
      return true;
    }
    try {
      mod.C_EncryptFinal(session, Buffer.alloc(32)); // ends the operation the token should not have started
    } catch {
      // The probe session is closed after probing in any case.
    }
    return false;
  } finally {
    try {
      mod.C_DestroyObject(session, key);
    } catch {
      // A session object: gone with the session anyway.
    }
  }
}

/** Decrypts a real OAEP-SHA-256 ciphertext with a throw-away session key pair; any failure means "no". */
function oaepSha256Works(mod: pkcs11js.PKCS11, session: pkcs11js.Handle): boolean {
  let pair: pkcs11js.KeyPair | undefined;
  try {
    pair = mod.C_GenerateKeyPair(
      session,
      { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_MODULUS_BITS, value: 1024 },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
      ],
      [
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: true },
      ],
    );
    const [n, e] = mod.C_GetAttributeValue(session, pair.publicKey, [
      { type: pkcs11js.CKA_MODULUS },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT },
    ]);
    const key = createPublicKey({ key: { kty: "RSA", n: n!.value!.toString("base64url"), e: e!.value!.toString("base64url") }, format: "jwk" });
    const probe = Buffer.from("p11kms oaep-sha256 probe");
    const ct = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, probe);
    mod.C_DecryptInit(session, oaepMechanism("sha256"), pair.privateKey);
    return mod.C_Decrypt(session, ct, Buffer.alloc(128)).equals(probe);
  } catch {
    return false;
  } finally {
    for (const h of pair ? [pair.privateKey, pair.publicKey] : []) {
      try {
        mod.C_DestroyObject(session, h);
      } catch {
        // Session objects vanish with the session anyway.
      }
    }
  }
}
