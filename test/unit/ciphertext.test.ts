import { describe, expect, it } from "vitest";
import {
  ALG_AES_256_GCM,
  BLOB_FORMAT_V1,
  BLOB_OVERHEAD,
  HEADER_BYTES,
  IV_BYTES,
  TAG_BYTES,
  encodeHeader,
  invalidCiphertext,
  isUuid,
  parseBlob,
} from "../../src/kms/ciphertext.js";
import { KmsError } from "../../src/kms/errors.js";
import { thrown } from "../helpers/thrown.js";

const KEY_ID = "00112233-4455-6677-8899-aabbccddeeff";
const IV = Buffer.from("a0a1a2a3a4a5a6a7a8a9aaab", "hex");
const INVALID_MESSAGE = "The ciphertext is invalid, was tampered with, or the encryption context does not match.";


function expectInvalidCiphertext(blob: Uint8Array): void {
  const err = thrown(() => parseBlob(blob));
  expect(err).toBeInstanceOf(KmsError);
  expect((err as KmsError).code).toBe("InvalidCiphertextException");
  expect((err as KmsError).message).toBe(INVALID_MESSAGE);
}

/** A well-formed blob: header, `n` bytes of "ciphertext" (0x11...) and a 16-byte "tag" (0xee...). */
function blobWith(n: number, keyId = KEY_ID, version = 7): Buffer {
  const header = encodeHeader({ keyId, version, iv: IV });
  return Buffer.concat([header, Buffer.alloc(n, 0x11), Buffer.alloc(TAG_BYTES, 0xee)]);
}

describe("constants", () => {
  it("match the documented layout", () => {
    expect(BLOB_FORMAT_V1).toBe(0x01);
    expect(ALG_AES_256_GCM).toBe(0x01);
    expect(IV_BYTES).toBe(12);
    expect(TAG_BYTES).toBe(16);
    expect(HEADER_BYTES).toBe(34);
    expect(BLOB_OVERHEAD).toBe(50);
  });
});

describe("encodeHeader", () => {
  it("writes every field at its documented offset", () => {
    const h = encodeHeader({ keyId: KEY_ID, version: 0x01020304, iv: IV });
    expect(h.length).toBe(34);
    expect(h[0]).toBe(0x01); // offset 0: format version
    expect(h.subarray(1, 17).toString("hex")).toBe("00112233445566778899aabbccddeeff"); // offset 1: key id
    expect(h.subarray(17, 21).toString("hex")).toBe("01020304"); // offset 17: version, u32 BE
    expect(h[21]).toBe(0x01); // offset 21: algorithm
    expect(h.subarray(22, 34).toString("hex")).toBe("a0a1a2a3a4a5a6a7a8a9aaab"); // offset 22: IV
    expect(h.toString("hex")).toBe(
      "01" + "00112233445566778899aabbccddeeff" + "01020304" + "01" + "a0a1a2a3a4a5a6a7a8a9aaab",
    );
  });

  it("writes the version big-endian over the full u32 range", () => {
    expect(encodeHeader({ keyId: KEY_ID, version: 1, iv: IV }).subarray(17, 21).toString("hex")).toBe("00000001");
    expect(encodeHeader({ keyId: KEY_ID, version: 0xffffffff, iv: IV }).subarray(17, 21).toString("hex")).toBe(
      "ffffffff",
    );
  });

  it.each([0, 11, 13, 16])("refuses an IV of %i bytes", (n) => {
    expect(() => encodeHeader({ keyId: KEY_ID, version: 1, iv: Buffer.alloc(n) })).toThrow(new Error("IV must be 12 bytes"));
  });

  it.each([
    "00112233-4455-6677-8899-AABBCCDDEEFF",
    "00112233445566778899aabbccddeeff",
    "00112233-4455-6677-8899-aabbccddeef",
    "",
  ])("refuses key id %j", (keyId) => {
    expect(() => encodeHeader({ keyId, version: 1, iv: IV })).toThrow(new Error(`not a key id: ${keyId}`));
  });
});

describe("parseBlob", () => {
  it("round-trips key id, version and IV, and splits header from body", () => {
    const keyId = "9f3c1e52-0a6b-4d8e-b1f7-3c2d5e6f7a8b";
    const blob = blobWith(5, keyId, 4242);
    const p = parseBlob(blob);
    expect(p.keyId).toBe(keyId);
    expect(p.version).toBe(4242);
    expect(p.iv.toString("hex")).toBe(IV.toString("hex"));
    expect(p.header.toString("hex")).toBe(blob.subarray(0, 34).toString("hex"));
    expect(p.body.length).toBe(5 + 16);
    expect(p.body.toString("hex")).toBe("11".repeat(5) + "ee".repeat(16));
  });

  it("gives a 4146-byte blob for the largest (4096-byte) plaintext", () => {
    const blob = blobWith(4096);
    expect(blob.length).toBe(4146);
    expect(parseBlob(blob).body.length).toBe(4096 + 16);
  });

  it("round-trips the largest u32 version", () => {
    expect(parseBlob(blobWith(1, KEY_ID, 0xffffffff)).version).toBe(0xffffffff);
  });

  it("returns the header bytes exactly as received (it is authenticated as is)", () => {
    const blob = blobWith(3);
    blob[5] = 0x99; // the fifth key id byte (0x44)
    const p = parseBlob(blob);
    expect(p.header[5]).toBe(0x99);
    expect(p.keyId).toBe("00112233-9955-6677-8899-aabbccddeeff");
  });

  it("reads a Uint8Array view at a non-zero offset of a larger buffer", () => {
    const blob = blobWith(4);
    const backing = new ArrayBuffer(blob.length + 20);
    const view = new Uint8Array(backing, 7, blob.length);
    view.set(blob);
    new Uint8Array(backing).fill(0xff, 0, 7); // garbage before the view
    new Uint8Array(backing).fill(0xff, 7 + blob.length); // and after it
    const p = parseBlob(view);
    expect(p.keyId).toBe(KEY_ID);
    expect(p.version).toBe(7);
    expect(p.body.toString("hex")).toBe("11".repeat(4) + "ee".repeat(16));
  });

  it("accepts the shortest blob: header, one ciphertext byte and the tag (51 bytes)", () => {
    const blob = blobWith(1);
    expect(blob.length).toBe(BLOB_OVERHEAD + 1);
    expect(parseBlob(blob).body.length).toBe(17);
  });

  it.each([0, 1, 33, 34, 49, 50])("refuses a blob of %i bytes", (n) => {
    const blob = Buffer.concat([blobWith(1), Buffer.alloc(64)]).subarray(0, n);
    expectInvalidCiphertext(blob);
  });

  it.each([0x00, 0x02, 0xff])("refuses format version byte %i", (v) => {
    const blob = blobWith(8);
    blob[0] = v;
    expectInvalidCiphertext(blob);
  });

  it.each([0x00, 0x02, 0xff])("refuses algorithm byte %i", (v) => {
    const blob = blobWith(8);
    blob[21] = v;
    expectInvalidCiphertext(blob);
  });
});

describe("invalidCiphertext", () => {
  it("is InvalidCiphertextException with the generic message and keeps the cause", () => {
    const cause = new Error("CKR_GENERAL_ERROR");
    const err = invalidCiphertext(cause);
    expect(err).toBeInstanceOf(KmsError);
    expect(err.code).toBe("InvalidCiphertextException");
    expect(err.message).toBe(INVALID_MESSAGE);
    expect(err.cause).toBe(cause);
  });
});

describe("isUuid", () => {
  it.each([
    ["00112233-4455-6677-8899-aabbccddeeff", true],
    ["00112233-4455-6677-8899-AABBCCDDEEFF", false],
    ["00112233445566778899aabbccddeeff", false],
    ["00112233-4455-6677-8899-aabbccddeeff0", false],
    [" 00112233-4455-6677-8899-aabbccddeeff", false],
    ["0011223g-4455-6677-8899-aabbccddeeff", false],
  ])("%j -> %s", (s, expected) => {
    expect(isUuid(s)).toBe(expected);
  });
});
