/**
 * The signing ceilings of the raw child (raw-pkcs11.ts): ECDSA P-256 and RSA-2048 PSS signatures of a
 * 32-byte digest on token key pairs made with the daemon's own templates, through pkcs11js directly.
 *
 * Each call is C_SignInit + C_Sign(Async) — the daemon cannot keep an operation initialised between calls
 * either, and C_SignInit is where SoftHSM2 loads the private key (a large share of an ECDSA signature).
 */
import { createHash, randomUUID } from "node:crypto";
import pkcs11js from "pkcs11js";
import { probeCapabilities } from "../../src/hsm/objects/capabilities.js";
import { signingMechanism } from "../../src/hsm/objects/mechanisms.js";
import { keyLabel, keyObjectId, keyPairTemplates } from "../../src/hsm/objects/templates.js";

export type SignAlgorithm = "ecdsa" | "pss";

/** One signature per call; `sessions` of them may run at once (one PKCS#11 session each). */
export interface SignOps {
  readonly sync: () => Buffer;
  /** One operation per session, for concurrent lanes on libuv's thread pool as the daemon uses it. */
  readonly async: (() => Promise<Buffer>)[];
}

/** What the signature is over: a SHA-256 digest, as KMS Sign with MessageType DIGEST hands to the device. */
const DIGEST = createHash("sha256").update("p11kms bench").digest();

export function prepareSign(
  mod: pkcs11js.PKCS11,
  slot: pkcs11js.Handle,
  algorithm: SignAlgorithm,
  sessions: number,
  sessionCopy = false,
): SignOps {
  const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
  const first = mod.C_OpenSession(slot, flags);
  // The daemon restricts CKA_ALLOWED_MECHANISMS when the token enforces it: probe the same way, so the key
  // carries the same attributes (and SoftHSM2 the same checks) as a key CreateKey makes.
  const caps = probeCapabilities(mod, slot, first, "auto");
  const policy = { restrict: caps.allowedMechanisms, rawRsa: caps.rsaOaepSha256 === "fallback" };
  const keyId = randomUUID();
  const spec = algorithm === "ecdsa" ? "ECC_NIST_P256" : "RSA_2048";
  const t = keyPairTemplates(spec, "SIGN_VERIFY", keyLabel(keyId, 1), keyObjectId(keyId, 1), policy);
  const pair = mod.C_GenerateKeyPair(first, t.mechanism, t.publicKey, t.privateKey);
  // As the daemon signs P-256: on an in-memory copy of the private key (session-copies.ts).
  const privateKey = sessionCopy ? mod.C_CopyObject(first, pair.privateKey, [{ type: pkcs11js.CKA_TOKEN, value: false }]) : pair.privateKey;
  const mechanism = signingMechanism(algorithm === "ecdsa" ? { kind: "ecdsa", hash: "sha256" } : { kind: "rsa-pss", hash: "sha256" });
  const sigBytes = algorithm === "ecdsa" ? 64 : 256;

  const syncOut = Buffer.alloc(sigBytes);
  const sync = () => {
    mod.C_SignInit(first, mechanism, privateKey);
    return mod.C_Sign(first, DIGEST, syncOut);
  };
  const async = Array.from({ length: sessions }, (_, i) => {
    const session = i === 0 ? first : mod.C_OpenSession(slot, flags);
    const out = Buffer.alloc(sigBytes);
    return async () => {
      // As in AsymmetricOps.sign: pkcs11js has no async C_SignInit, so only the signature leaves the loop.
      mod.C_SignInit(session, mechanism, privateKey);
      return mod.C_SignAsync(session, DIGEST, out);
    };
  });
  return { sync, async };
}
