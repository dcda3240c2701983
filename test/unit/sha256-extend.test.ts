import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256Extend, sha256Padding } from "../../src/hsm/objects/sha256-extend.js";

describe("SHA-256 length extension (the imported-material length check)", () => {
  it("predicts SHA-256(m ‖ pad(|m|) ‖ suffix) from SHA-256(m) for every length around block boundaries", () => {
    for (let length = 0; length <= 200; length++) {
      const m = randomBytes(length);
      const suffix = randomBytes(length % 70);
      const expected = createHash("sha256").update(m).update(sha256Padding(length)).update(suffix).digest();
      expect(sha256Extend(createHash("sha256").update(m).digest(), length, suffix)).toEqual(expected);
    }
  });

  it("matches what the device digests only for the true length (what makes it a length check)", () => {
    const m = randomBytes(96);
    const digest = createHash("sha256").update(m).digest();
    const suffix = Buffer.from("x");
    // The device digests m ‖ pad(guess) ‖ suffix; the prediction assumes guess is |m|.
    const device = (guess: number) => createHash("sha256").update(m).update(sha256Padding(guess)).update(suffix).digest();
    for (const guess of [95, 97, 64, 128, 88]) expect(device(guess)).not.toEqual(sha256Extend(digest, guess, suffix));
    expect(device(96)).toEqual(sha256Extend(digest, 96, suffix));
  });

  it("pads like FIPS 180-4: 0x80, zeros, 64-bit bit length, to a multiple of 64", () => {
    for (const n of [0, 55, 56, 63, 64, 119, 120]) {
      const p = sha256Padding(n);
      expect((n + p.length) % 64).toBe(0);
      expect(p[0]).toBe(0x80);
      expect(p.readBigUInt64BE(p.length - 8)).toBe(BigInt(n * 8));
    }
  });
});
