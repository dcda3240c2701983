import { constants, generateKeyPairSync, privateDecrypt, publicEncrypt } from "node:crypto";
import { describe, expect, it } from "vitest";
import { oaepDecode } from "../../src/hsm/objects/oaep.js";

// The fallback's device half is raw RSA; node's RSA_NO_PADDING private decryption is the same operation.
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const raw = (ct: Buffer) => privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ct);
const enc = (pt: Buffer, hash: "sha1" | "sha256") => publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, pt);

describe("oaepDecode (RFC 8017 EME-OAEP decoding)", () => {
  it.each(["sha1", "sha256"] as const)("decodes what node:crypto encodes with %s, every length up to the limit", (hash) => {
    const max = 256 - 2 * (hash === "sha1" ? 20 : 32) - 2;
    for (const len of [0, 1, 2, 31, 100, max]) {
      const pt = Buffer.alloc(len, len & 0xff);
      expect(oaepDecode(raw(enc(pt, hash)), 256, hash)!.equals(pt)).toBe(true);
    }
  });

  it("restores leading zero bytes a device may drop from the raw result", () => {
    const em = raw(enc(Buffer.from("x"), "sha256"));
    expect(em[0]).toBe(0);
    expect(oaepDecode(em.subarray(1), 256, "sha256")!.toString()).toBe("x");
  });

  it("fails (undefined) for every kind of damage, the same way", () => {
    const em = raw(enc(Buffer.from("secret"), "sha256"));
    const damaged: Buffer[] = [];
    for (const i of [0, 1, 20, 33, 64, 65, 200, 255]) {
      const b = Buffer.from(em);
      b[i]! ^= 0x01;
      damaged.push(b);
    }
    damaged.push(raw(enc(Buffer.from("secret"), "sha1"))); // wrong hash
    damaged.push(Buffer.alloc(256)); // all zero: no separator
    damaged.push(Buffer.alloc(257)); // too long
    for (const d of damaged) expect(oaepDecode(d, 256, "sha256")).toBeUndefined();
    expect(oaepDecode(em, 256, "sha256", Buffer.from("a label"))).toBeUndefined();
  });

  it("refuses moduli too small for the hash", () => {
    expect(oaepDecode(Buffer.alloc(65), 65, "sha256")).toBeUndefined();
  });
});
