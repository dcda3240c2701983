import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from "node:crypto";

/** RFC 5649's alternative initial value, which node:crypto's id-aes256-wrap-pad expects explicitly. */
const KWP_IV = Buffer.from("a65959a6", "hex");

/**
 * Client-side wrapping for ImportKeyMaterial, with node:crypto only: RSAES_OAEP_SHA_* encrypts the material
 * under the wrapping public key; RSA_AES_KEY_WRAP_SHA_* encrypts a fresh AES-256 key with OAEP and wraps the
 * material under it with AES key wrap with padding (RFC 5649), concatenated in that order (as AWS defines it).
 * The ephemeral key is wiped after use.
 */
export function wrapKeyMaterial(material: Buffer, publicKeyDer: Buffer, wrappingAlgorithm: string): Buffer {
  const key = createPublicKey({ key: publicKeyDer, format: "der", type: "spki" });
  const oaepHash = wrappingAlgorithm.endsWith("_SHA_256") ? "sha256" : "sha1";
  const oaep = (data: Buffer) => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  if (wrappingAlgorithm.startsWith("RSAES_OAEP_")) return oaep(material);
  if (!wrappingAlgorithm.startsWith("RSA_AES_KEY_WRAP_")) throw new Error(`unsupported wrapping algorithm ${wrappingAlgorithm}`);
  const ephemeral = randomBytes(32);
  try {
    const c = createCipheriv("id-aes256-wrap-pad", ephemeral, KWP_IV);
    return Buffer.concat([oaep(ephemeral), c.update(material), c.final()]);
  } finally {
    ephemeral.fill(0);
  }
}
