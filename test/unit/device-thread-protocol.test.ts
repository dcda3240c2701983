import { describe, expect, it } from "vitest";
import { decodeJobs, decodeResults, encodeJobs as encodeQueued, encodeResults, type ThreadJob } from "../../src/hsm/runtime/device-thread-protocol.js";

/** The sender queues the session apart from the call. */
const encodeJobs = (jobs: readonly ThreadJob[]) => encodeQueued(jobs.map(({ id, session, ...call }) => ({ id, session, call })));

const job = (id: number, over: Partial<ThreadJob> = {}): ThreadJob => ({
  id,
  kind: "encrypt",
  mechanism: 0x1087,
  session: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]),
  key: Buffer.from([7, 0, 0, 0, 0, 0, 0, 0]),
  fallbackKey: Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]),
  iv: Buffer.alloc(12, 3),
  aad: Buffer.from("header and context"),
  input: Buffer.alloc(4096, 5),
  outputBytes: 4112,
  ...over,
});

describe("device thread wire format", () => {
  it("round-trips a batch of jobs of every kind, with and without a fallback key, empty fields included", () => {
    const jobs = [job(1), job(2, { kind: "decrypt", fallbackKey: undefined }), job(0xffffffff, { kind: "sign", mechanism: 0x1041, iv: Buffer.alloc(0), aad: Buffer.alloc(0), input: Buffer.alloc(32, 1), outputBytes: 64 })];
    const ab = encodeJobs(jobs);
    expect(ab).toBeInstanceOf(ArrayBuffer);
    const back = decodeJobs(ab);
    expect(back).toHaveLength(3);
    back.forEach((b, i) => {
      const j = jobs[i]!;
      expect({ ...b, session: Buffer.from(b.session), key: Buffer.from(b.key), fallbackKey: b.fallbackKey && Buffer.from(b.fallbackKey), iv: Buffer.from(b.iv), aad: Buffer.from(b.aad), input: Buffer.from(b.input) }).toEqual(j);
    });
  });

  it("encodes into a buffer of its own (transferable), never a view of a shared pool slab", () => {
    const small = Buffer.from("x"); // from Node's 8 KiB pool
    const ab = encodeJobs([job(1, { input: small })]);
    expect(ab.byteLength).toBeLessThan(200);
    expect(ab).not.toBe(small.buffer);
  });

  it("round-trips results: outputs, the lost-copy flag, failures with and without a CK_RV", () => {
    const results = [
      { id: 1, ok: true as const, lostCopy: false, output: Buffer.from("ciphertext") },
      { id: 2, ok: true as const, lostCopy: true, output: Buffer.alloc(0) },
      { id: 3, ok: false as const, rv: 0x40 },
      { id: 4, ok: false as const, rv: undefined },
    ];
    const back = decodeResults(encodeResults(results));
    expect(back.map((r) => (r.ok ? { ...r, output: Buffer.from(r.output) } : r))).toEqual(results);
  });

  it("refuses a truncated batch instead of reading past it", () => {
    const ab = encodeJobs([job(1)]);
    expect(() => decodeJobs(ab.slice(0, ab.byteLength - 10))).toThrow(/truncated|out of range/i);
  });
});
