import { describe, expect, it } from "vitest";
import { encodeEncryptionContext } from "../../packages/client/src/contract.js";
import { MAX_ENCRYPTION_CONTEXT_BYTES, validateEncryptionContext } from "../../src/kms/encryption-context.js";
import { KmsError } from "../../src/kms/errors.js";
import type { EncryptionContext } from "../../src/kms/types.js";
import { thrown } from "../helpers/thrown.js";


function expectValidation(ctx: EncryptionContext, message: string): void {
  const err = thrown(() => validateEncryptionContext(ctx));
  expect(err).toBeInstanceOf(KmsError);
  expect((err as KmsError).code).toBe("ValidationException");
  expect((err as KmsError).message).toBe(message);
}

const hex = (b: Buffer) => b.toString("hex");

describe("encodeEncryptionContext", () => {
  it("encodes the empty context as a zero pair count (2 zero bytes)", () => {
    expect(hex(encodeEncryptionContext({}))).toBe("0000");
  });

  it("produces the documented bytes for a small example", () => {
    // u16 count, then per pair: u16 key length, key, u16 value length, value; pairs sorted by key.
    expect(hex(encodeEncryptionContext({ purpose: "test", a: "xy" }))).toBe(
      "0002" + "0001" + "61" + "0002" + "7879" + "0007" + "707572706f7365" + "0004" + "74657374",
    );
  });

  it("matches the example in docs/ciphertext-format.md", () => {
    expect(hex(encodeEncryptionContext({ b: "2", a: "1" }))).toBe("00020001610001310001620001" + "32");
  });

  it("does not depend on the insertion order of the pairs", () => {
    const a = encodeEncryptionContext({ a: "1", b: "2", c: "3" });
    const b = encodeEncryptionContext({ c: "3", a: "1", b: "2" });
    expect(hex(b)).toBe(hex(a));
    expect(hex(a)).toBe("0003" + "0001610001" + "31" + "0001620001" + "32" + "0001630001" + "33");
  });

  it('keeps {"a":"bc"} and {"ab":"c"} apart', () => {
    const one = encodeEncryptionContext({ a: "bc" });
    const two = encodeEncryptionContext({ ab: "c" });
    expect(hex(one)).toBe("0001" + "0001" + "61" + "0002" + "6263");
    expect(hex(two)).toBe("0001" + "0002" + "6162" + "0001" + "63");
    expect(one.equals(two)).toBe(false);
  });

  it("keeps a pair apart from the same bytes split into two pairs", () => {
    expect(encodeEncryptionContext({ a: "b" }).equals(encodeEncryptionContext({ a: "", b: "" }))).toBe(false);
  });

  it("encodes empty values with a zero length", () => {
    expect(hex(encodeEncryptionContext({ k: "" }))).toBe("0001" + "0001" + "6b" + "0000");
  });

  it("measures and writes lengths in UTF-8 bytes, not UTF-16 units", () => {
    // é = c3 a9 (2 bytes), € = e2 82 ac (3 bytes), 😀 = f0 9f 98 80 (4 bytes, 2 UTF-16 units)
    expect(hex(encodeEncryptionContext({ é: "€" }))).toBe("0001" + "0002" + "c3a9" + "0003" + "e282ac");
    expect(hex(encodeEncryptionContext({ k: "😀" }))).toBe("0001" + "0001" + "6b" + "0004" + "f09f9880");
  });

  it("sorts by the UTF-8 bytes of the key, not by JavaScript string order", () => {
    // UTF-16 order puts U+1F600 (surrogate 0xD83D) before U+FF61; UTF-8 order (ef.. < f0..) is the reverse.
    const encoded = encodeEncryptionContext({ "😀": "1", "\uFF61": "2" });
    expect(hex(encoded)).toBe("0002" + "0003" + "efbda1" + "0001" + "32" + "0004" + "f09f9880" + "0001" + "31");
  });

  it("sorts bytewise, so upper case comes before lower case", () => {
    expect(hex(encodeEncryptionContext({ a: "1", B: "2" }))).toBe("0002" + "0001420001" + "32" + "0001610001" + "31");
  });
});

describe("validateEncryptionContext", () => {
  it("accepts the empty context and ordinary pairs", () => {
    expect(validateEncryptionContext({})).toBeUndefined();
    expect(validateEncryptionContext({ department: "10-1", "ü": "" })).toBeUndefined();
  });

  it("has an 8 KiB limit", () => {
    expect(MAX_ENCRYPTION_CONTEXT_BYTES).toBe(8192);
  });

  it("accepts exactly 8192 bytes of keys and values", () => {
    expect(validateEncryptionContext({ k: "x".repeat(8191) })).toBeUndefined();
    expect(validateEncryptionContext({ a: "x".repeat(4095), b: "y".repeat(4095) })).toBeUndefined();
  });

  it("refuses 8193 bytes", () => {
    expectValidation({ k: "x".repeat(8192) }, "EncryptionContext must be at most 8192 bytes of keys and values.");
    expectValidation(
      { a: "x".repeat(4095), b: "y".repeat(4096) },
      "EncryptionContext must be at most 8192 bytes of keys and values.",
    );
  });

  it("counts UTF-8 bytes, not characters", () => {
    // 1 + 4096 * 2 = 8193 bytes although only 4097 characters
    expectValidation({ k: "é".repeat(4096) }, "EncryptionContext must be at most 8192 bytes of keys and values.");
    expect(validateEncryptionContext({ k: "é".repeat(4095) })).toBeUndefined(); // 8191 bytes
  });

  it("refuses an empty key", () => {
    expectValidation({ "": "v" }, "EncryptionContext keys must not be empty.");
    expectValidation({ ok: "v", "": "" }, "EncryptionContext keys must not be empty.");
  });

  it.each([
    ["a number", 1],
    ["null", null],
    ["an object", { x: "y" }],
    ["a boolean", true],
  ])("refuses a value that is %s", (_what, value) => {
    expectValidation(
      { n: value } as unknown as EncryptionContext,
      "EncryptionContext value for 'n' must be a string.",
    );
  });

  it("refuses more than 65535 pairs", () => {
    const ctx: Record<string, string> = {};
    for (let i = 0; i < 0x10000; i++) ctx[`k${i}`] = "";
    expectValidation(ctx, "EncryptionContext has too many pairs.");
  });
});
