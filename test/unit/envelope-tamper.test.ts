import { describe, expect, it } from "vitest";
import { DecryptStream } from "../../packages/client/src/envelope/decrypt-stream.js";
import { Envelope } from "../../packages/client/src/envelope/envelope.js";
import { encodeHeaderBody, parseHeader } from "../../packages/client/src/envelope/header.js";
import { layout, pattern, run } from "../helpers/envelope.js";
import { LocalKeyring } from "../helpers/local-keyring.js";

// Small frames make frame-level tampering easy to express; the code paths are the same as for 64 KiB.
const FRAME = 32;
const PLAINTEXT = pattern(FRAME * 4 + 5); // 4 regular frames and a final frame of 5 bytes

async function setup() {
  const k = new LocalKeyring();
  const env = new Envelope({ keyring: k, frameLength: FRAME });
  const m = await env.encrypt(PLAINTEXT, { context: { tenant: "t1" } });
  return { k, env, m, l: layout(m) };
}

async function decryptError(k: LocalKeyring, m: Buffer): Promise<{ code?: string; message: string; out: Buffer }> {
  const r = await run(new DecryptStream(k), m, 13);
  expect(r.err, "tampered message must not decrypt").toBeDefined();
  return { code: r.err!.code, message: r.err!.message, out: r.out };
}

const cat = (...b: Buffer[]) => Buffer.concat(b);

describe("tampering is detected", () => {
  it("sanity: the untouched message decrypts", async () => {
    const { k, m, l } = await setup();
    expect(l.frames).toHaveLength(5);
    expect((await run(new DecryptStream(k), m)).out.equals(PLAINTEXT)).toBe(true);
  });

  it("truncation: the final frame dropped", async () => {
    const { k, m, l } = await setup();
    const e = await decryptError(k, m.subarray(0, l.frames[4]!.start));
    expect(e).toMatchObject({ code: "Truncated", message: expect.stringContaining("after frame 4") });
  });

  it("truncation: cut inside a frame, inside the header, after the header", async () => {
    const { k, m, l } = await setup();
    expect((await decryptError(k, m.subarray(0, l.frames[2]!.start + 10))).code).toBe("Truncated");
    expect((await decryptError(k, m.subarray(0, l.headerEnd - 1))).code).toBe("Truncated");
    expect((await decryptError(k, m.subarray(0, l.headerEnd))).code).toBe("Truncated");
  });

  it("truncation: a regular frame turned into a final one (the final flag is authenticated)", async () => {
    const { k, m, l } = await setup();
    const f = l.frames[1]!; // regular frame 2: seq | ct(32) | tag
    const asFinal = cat(Buffer.from([0xff, 0xff, 0xff, 0xff]), m.subarray(f.start, f.start + 4), u32(FRAME), m.subarray(f.start + 4, f.end));
    const e = await decryptError(k, cat(m.subarray(0, f.start), asFinal));
    expect(e.code).toBe("FrameAuthenticationFailed");
  });

  it("reordering: frames 2 and 3 swapped, with or without renumbering", async () => {
    const { k, m, l } = await setup();
    const [f1, f2, f3] = [l.frames[0]!, l.frames[1]!, l.frames[2]!];
    const swapped = cat(m.subarray(0, f2.start), m.subarray(f3.start, f3.end), m.subarray(f2.start, f2.end), m.subarray(f3.end));
    expect((await decryptError(k, swapped)).message).toMatch(/out of sequence/);
    // Renumbered so the sequence looks right: the IV and AAD still bind the original numbers.
    const a = Buffer.from(m.subarray(f3.start, f3.end));
    const b = Buffer.from(m.subarray(f2.start, f2.end));
    a.writeUInt32BE(2, 0);
    b.writeUInt32BE(3, 0);
    const e = await decryptError(k, cat(m.subarray(0, f2.start), a, b, m.subarray(f3.end)));
    expect(e).toMatchObject({ code: "FrameAuthenticationFailed", message: "frame 2 failed authentication" });
    // Frame 1 verified before the bad frame and was released; frame 2's plaintext never was.
    expect(e.out.equals(PLAINTEXT.subarray(0, FRAME))).toBe(true);
    expect(f1.end).toBe(f2.start);
  });

  it("frame swap between two messages, even under the same data key (per-message keys)", async () => {
    const k = new LocalKeyring();
    k.fixedDataKey = pattern(32, 99);
    const env = new Envelope({ keyring: k, frameLength: FRAME });
    const m1 = await env.encrypt(PLAINTEXT);
    const m2 = await env.encrypt(pattern(PLAINTEXT.length, 7));
    const [l1, l2] = [layout(m1), layout(m2)];
    const f = l1.frames[1]!;
    const g = l2.frames[1]!;
    const mixed = cat(m1.subarray(0, f.start), m2.subarray(g.start, g.end), m1.subarray(f.end));
    expect(await decryptError(k, mixed)).toMatchObject({ code: "FrameAuthenticationFailed", message: "frame 2 failed authentication" });
  });

  it("a flipped ciphertext or tag bit releases nothing of that frame", async () => {
    const { k, m, l } = await setup();
    for (const at of [l.frames[0]!.start + 4, l.frames[0]!.end - 1]) {
      const t = Buffer.from(m);
      t[at]! ^= 1;
      const e = await decryptError(k, t);
      expect(e.code).toBe("FrameAuthenticationFailed");
      expect(e.out.length).toBe(0);
    }
  });

  it("header edit: the encryption context, the frame length", async () => {
    const { k, m } = await setup();
    const { header } = parseHeader(m)!;
    // Re-encoded with another context: the data key no longer unwraps (the context is its AAD).
    const other = cat(encodeHeaderBody({ ...header, context: { tenant: "t2" } }), m.subarray(parseHeader(m)!.body.length));
    expect((await decryptError(k, other)).code).toBe("NoDecryptableDataKey");
    // The frame length changed: the data key unwraps, the header tag does not verify.
    const p = parseHeader(m)!;
    const edited = cat(encodeHeaderBody({ ...header, frameLength: FRAME + 1 }), m.subarray(p.body.length));
    expect((await decryptError(k, edited)).code).toBe("HeaderAuthenticationFailed");
    // A flipped bit in the message id: the commitment (derived from it) no longer matches.
    const t = Buffer.from(m);
    t[10]! ^= 0x80;
    expect((await decryptError(k, t)).code).toBe("CommitmentMismatch");
  });

  it("header edit: the header tag itself", async () => {
    const { k, m, l } = await setup();
    const t = Buffer.from(m);
    t[l.headerEnd - 1]! ^= 1;
    expect((await decryptError(k, t)).code).toBe("HeaderAuthenticationFailed");
  });

  it("EDK edit: a flipped bit in the encrypted data key", async () => {
    const { k, m } = await setup();
    const p = parseHeader(m)!;
    const edk = p.header.encryptedDataKeys[0]!;
    const blob = Buffer.from(edk.blob);
    blob[20]! ^= 1;
    const t = cat(encodeHeaderBody({ ...p.header, encryptedDataKeys: [{ ...edk, blob }] }), m.subarray(p.body.length));
    expect((await decryptError(k, t)).code).toBe("NoDecryptableDataKey");
  });

  it("commitment mismatch: a valid EDK of another data key spliced in", async () => {
    const { k, m } = await setup();
    const p = parseHeader(m)!;
    // An attacker able to wrap keys (e.g. with KMS Encrypt rights) substitutes a data key of its choosing.
    const forged = { ...p.header.encryptedDataKeys[0]!, blob: k.wrap(pattern(32, 5), p.header.context) };
    const t = cat(encodeHeaderBody({ ...p.header, encryptedDataKeys: [forged] }), m.subarray(p.body.length));
    expect((await decryptError(k, t)).code).toBe("CommitmentMismatch");
    // And a changed commitment with the right data key.
    const c = Buffer.from(p.header.commitment);
    c[0]! ^= 1;
    const t2 = cat(encodeHeaderBody({ ...p.header, commitment: c }), m.subarray(p.body.length));
    expect((await decryptError(k, t2)).code).toBe("CommitmentMismatch");
  });

  it("extra trailing bytes after the final frame, in the same chunk or a later one", async () => {
    const { k, m } = await setup();
    expect((await decryptError(k, cat(m, Buffer.from([0])))).code).toBe("TrailingData");
    const r = await run(new DecryptStream(k), cat(m, Buffer.alloc(100)), m.length);
    expect(r.err?.code).toBe("TrailingData");
  });

  it("two messages concatenated are not one message", async () => {
    const { k, m } = await setup();
    expect((await decryptError(k, cat(m, m))).code).toBe("TrailingData");
  });
});

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
