import { KmsError } from "./errors.js";
import type { WrappingAlgorithm } from "./types.js";
import { WRAPPING_ALGORITHMS } from "./types.js";

/** What an import token binds: the key, the wrapping key in the device, the algorithm, the expiry. */
export interface ImportTokenClaims {
  readonly keyId: string;
  readonly wrappingKeyId: string;
  readonly algorithm: WrappingAlgorithm;
  readonly expiresAt: Date;
}

const VERSION = 1;
const MAC_BYTES = 32;
const MAX_TOKEN_BYTES = 1024;

const invalid = () => new KmsError("InvalidImportTokenException", "The import token is invalid or does not belong to this key.");

/**
 * Import token layout: version byte ‖ payload length (2 bytes) ‖ payload (JSON claims) ‖ HMAC-SHA256 of
 * everything before it, computed by the key store's device. Opaque to clients; the MAC, not secrecy,
 * protects it (the claims hold no secret).
 */
export function encodeImportTokenPayload(c: ImportTokenClaims): Buffer {
  const json = Buffer.from(JSON.stringify({ k: c.keyId, w: c.wrappingKeyId, a: c.algorithm, e: c.expiresAt.getTime() }), "utf8");
  const head = Buffer.alloc(3);
  head.writeUInt8(VERSION, 0);
  head.writeUInt16BE(json.length, 1);
  return Buffer.concat([head, json]);
}

/** The payload and MAC of a token, or InvalidImportTokenException when it is not shaped like one. */
export function splitImportToken(token: Buffer): { payload: Buffer; mac: Buffer } {
  if (token.length < 3 + MAC_BYTES || token.length > MAX_TOKEN_BYTES || token[0] !== VERSION) throw invalid();
  const len = token.readUInt16BE(1);
  if (token.length !== 3 + len + MAC_BYTES) throw invalid();
  return { payload: token.subarray(0, 3 + len), mac: token.subarray(3 + len) };
}

/** Claims of a payload whose MAC has been verified; a malformed one is InvalidImportTokenException. */
export function decodeImportTokenPayload(payload: Buffer): ImportTokenClaims {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.subarray(3).toString("utf8"));
  } catch {
    throw invalid();
  }
  const o = raw as { k?: unknown; w?: unknown; a?: unknown; e?: unknown };
  if (typeof o.k !== "string" || typeof o.w !== "string" || typeof o.e !== "number" || !WRAPPING_ALGORITHMS.includes(o.a as WrappingAlgorithm)) {
    throw invalid();
  }
  return { keyId: o.k, wrappingKeyId: o.w, algorithm: o.a as WrappingAlgorithm, expiresAt: new Date(o.e) };
}

/** Checks a verified token against the request: another key's token is invalid; a stale one has expired. */
export function checkImportClaims(c: ImportTokenClaims, keyId: string, now: Date): void {
  if (c.keyId !== keyId) throw invalid();
  if (c.expiresAt.getTime() <= now.getTime()) {
    throw new KmsError("ExpiredImportTokenException", "The import token has expired (ParametersValidTo has passed); call GetParametersForImport again.");
  }
}
