import { describe, expect, it } from "vitest";
import { DecryptStream } from "../../packages/client/src/envelope/decrypt-stream.js";
import { EncryptStream } from "../../packages/client/src/envelope/encrypt-stream.js";
import { Envelope } from "../../packages/client/src/envelope/envelope.js";
import { DEFAULT_FRAME_LENGTH, parseHeader } from "../../packages/client/src/envelope/header.js";
import { layout, pattern, run } from "../helpers/envelope.js";
import { LocalKeyring } from "../helpers/local-keyring.js";

const F = DEFAULT_FRAME_LENGTH;

describe("envelope round trips (local keyring, default 64 KiB frames)", () => {
  it.each([0, 1, F - 1, F, F + 1, 3 * F + 17])("%i bytes, in odd-sized chunks", async (size) => {
    const k = new LocalKeyring();
    const plaintext = pattern(size, size + 1);
    const enc = await run(new EncryptStream(k, { context: { purpose: "test" } }), plaintext, 4099);
    expect(enc.err).toBeUndefined();
    const frames = layout(enc.out).frames;
    // Frames: full ones, then a final frame holding the remainder (a full final frame when size is a multiple).
    expect(frames.length).toBe(Math.max(1, Math.ceil(size / F)));
    const dec = await run(new DecryptStream(k), enc.out, 65_521);
    expect(dec.err).toBeUndefined();
    expect(dec.out.equals(plaintext)).toBe(true);
    expect(k.encryptCalls).toBe(1);
    expect(k.decryptCalls).toBe(1);
  });

  it("records the context, frame length and key in the header; ciphertext differs every time", async () => {
    const env = new Envelope({ keyring: new LocalKeyring(), frameLength: 100 });
    const a = await env.encrypt(Buffer.from("same"), { context: { tenant: "t1", "": "x" } });
    const b = await env.encrypt(Buffer.from("same"), { context: { tenant: "t1", "": "x" } });
    expect(a.equals(b)).toBe(false);
    const h = parseHeader(a)!.header;
    expect(h).toMatchObject({ version: 1, suite: 1, frameLength: 100, context: { tenant: "t1", "": "x" } });
    expect(h.encryptedDataKeys).toHaveLength(1);
    const r = await env.decrypt(a, { expectedContext: { tenant: "t1" } });
    expect(r.plaintext.toString()).toBe("same");
    expect(r.context).toEqual({ tenant: "t1", "": "x" });
  });

  it("refuses a message whose context lacks a required pair, before asking for the data key", async () => {
    const k = new LocalKeyring();
    const env = new Envelope({ keyring: k });
    const m = await env.encrypt(Buffer.from("x"), { context: { tenant: "t1" } });
    await expect(env.decrypt(m, { expectedContext: { tenant: "t2" } })).rejects.toMatchObject({ code: "ContextMismatch" });
    await expect(env.decrypt(m, { expectedContext: { other: "t1" } })).rejects.toMatchObject({ code: "ContextMismatch" });
    expect(k.decryptCalls).toBe(0);
  });

  it("enforces a declared plaintext length both ways", async () => {
    const k = new LocalKeyring();
    expect((await run(new EncryptStream(k, { plaintextLength: 10 }), Buffer.alloc(11))).err).toMatchObject({ code: "PlaintextLengthMismatch" });
    expect((await run(new EncryptStream(k, { plaintextLength: 10 }), Buffer.alloc(9))).err).toMatchObject({ code: "PlaintextLengthMismatch" });
    expect((await run(new EncryptStream(k, { plaintextLength: 10 }), Buffer.alloc(10))).err).toBeUndefined();
  });

  it("refuses frame lengths out of range", () => {
    expect(() => new EncryptStream(new LocalKeyring(), { frameLength: 0 })).toThrow(/frameLength/);
    expect(() => new EncryptStream(new LocalKeyring(), { frameLength: 16 * 1024 * 1024 + 1 })).toThrow(/frameLength/);
  });

  it("refuses input that is not an envelope message, or empty", async () => {
    const k = new LocalKeyring();
    expect((await run(new DecryptStream(k), Buffer.alloc(0))).err).toMatchObject({ code: "Truncated" });
    expect((await run(new DecryptStream(k), Buffer.from("PK\u0003\u0004 a zip file, say"))).err).toMatchObject({ code: "MalformedMessage" });
    const m = await new Envelope({ keyring: k }).encrypt(Buffer.from("x"));
    const v2 = Buffer.from(m);
    v2[4] = 2;
    expect((await run(new DecryptStream(k), v2)).err).toMatchObject({ code: "UnsupportedFormat" });
    const suite = Buffer.from(m);
    suite[6] = 9;
    expect((await run(new DecryptStream(k), suite)).err).toMatchObject({ code: "UnsupportedFormat", message: expect.stringContaining("0x0009") });
  });

  it("refuses a header declaring absurd sizes without buffering them", async () => {
    const k = new LocalKeyring();
    const m = await new Envelope({ keyring: k }).encrypt(Buffer.from("x"));
    const big = Buffer.from(m);
    big.writeUInt32BE(0x7fffffff, 4 + 1 + 2 + 32); // the context length
    expect((await run(new DecryptStream(k), big.subarray(0, 60))).err).toMatchObject({ code: "MalformedMessage", message: expect.stringMatching(/too large/) });
  });
});
