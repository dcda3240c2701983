import { createPublicKey } from "node:crypto";
import pkcs11js from "pkcs11js";
import type { AsymmetricKeySpec } from "../../kms/types.js";
import { ecPointValue } from "./der.js";
import { CURVES, rsaBits } from "./mechanisms.js";

/**
 * DER SubjectPublicKeyInfo from a public key object's attributes. The attributes go through a JWK into
 * node:crypto, which validates the point/modulus and writes the DER, so no hand-made SPKI encoder exists.
 */
export function readSpki(mod: pkcs11js.PKCS11, session: pkcs11js.Handle, handle: pkcs11js.Handle, spec: AsymmetricKeySpec): Buffer {
  if (rsaBits(spec) !== undefined) {
    const [n, e] = mod.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
    return spkiFromJwk({ kty: "RSA", n: b64u(n!.value!), e: b64u(e!.value!) });
  }
  const curve = CURVES[spec as keyof typeof CURVES];
  const [attr] = mod.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_POINT }]);
  const size = curve.fieldBytes;
  if (spec === "ECC_NIST_EDWARDS25519") return spkiFromJwk({ kty: "OKP", crv: curve.jwk, x: b64u(ecPointValue(attr!.value!, size)) });
  const point = ecPointValue(attr!.value!, 1 + 2 * size);
  if (point[0] !== 0x04) throw new Error(`compressed EC points are not supported (${spec})`);
  return spkiFromJwk({
    kty: "EC",
    crv: curve.jwk,
    x: b64u(point.subarray(1, 1 + size)),
    y: b64u(point.subarray(1 + size)),
  });
}

function spkiFromJwk(jwk: Record<string, string>): Buffer {
  return createPublicKey({ key: jwk, format: "jwk" }).export({ format: "der", type: "spki" });
}

function b64u(b: Buffer): string {
  return b.toString("base64url");
}
