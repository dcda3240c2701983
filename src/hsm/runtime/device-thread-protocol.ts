/**
 * The wire format between the event loop and the device thread: one ArrayBuffer per batch, transferred
 * (not copied) each way. Structured clone would be simpler, but a Buffer is a view, and cloning one copies
 * its whole backing store — an 8 KiB pool slab for a handle, the whole HTTP/2 frame for a plaintext —
 * which cost more than the AES itself.
 *
 * Self-contained (no imports): the device thread's script loads it too.
 *
 * Request job:  u32 id | u8 kind | u32 mechanism | bytes session | bytes key | bytes fallbackKey (empty: none) |
 *               bytes iv | bytes aad | bytes input | u32 outputBytes          (bytes = u32 length + the bytes)
 *               (iv and aad: AES-GCM's parameters; empty for a signature)
 * Result:       u32 id | u8 status (0 ok, 1 ok on the fallback key, 2 failed) | u32 rv (failed: CK_RV, or
 *               0xffffffff when the failure carried none) | bytes output (failed: empty)
 */

export type JobKind = "encrypt" | "decrypt" | "sign";
const KINDS: readonly JobKind[] = ["encrypt", "decrypt", "sign"];

/** One call: C_{Encrypt,Decrypt,Sign}Init on `key` with `mechanism` (a CKM_ value), then the one-part call. */
export interface ThreadJob {
  readonly id: number;
  readonly kind: JobKind;
  readonly mechanism: number;
  readonly session: Uint8Array;
  readonly key: Uint8Array;
  readonly fallbackKey: Uint8Array | undefined;
  readonly iv: Uint8Array;
  readonly aad: Uint8Array;
  readonly input: Uint8Array;
  readonly outputBytes: number;
}

/** What a job asks for, apart from its id and session (which the sender adds without copying it). */
export type JobCall = Omit<ThreadJob, "id" | "session">;

/** A job as queued by the sender. */
export interface QueuedJob {
  readonly id: number;
  readonly session: Uint8Array;
  readonly call: JobCall;
}

export type JobResult =
  | { readonly id: number; readonly ok: true; readonly lostCopy: boolean; readonly output: Buffer }
  | { readonly id: number; readonly ok: false; readonly rv: number | undefined };

const NO_RV = 0xffffffff;

export function encodeJobs(jobs: readonly QueuedJob[]): ArrayBuffer {
  let size = 0;
  for (const { session, call: j } of jobs) size += 4 + 1 + 4 + 6 * 4 + session.length + j.key.length + (j.fallbackKey?.length ?? 0) + j.iv.length + j.aad.length + j.input.length + 4;
  const w = new Writer(size);
  for (const { id, session, call: j } of jobs) {
    w.u32(id);
    w.u8(KINDS.indexOf(j.kind));
    w.u32(j.mechanism);
    w.bytes(session);
    w.bytes(j.key);
    w.bytes(j.fallbackKey ?? EMPTY);
    w.bytes(j.iv);
    w.bytes(j.aad);
    w.bytes(j.input);
    w.u32(j.outputBytes);
  }
  return w.done();
}

/** The jobs of a batch; their byte fields are views into `ab` (no copies). */
export function decodeJobs(ab: ArrayBuffer): ThreadJob[] {
  const r = new Reader(ab);
  const jobs: ThreadJob[] = [];
  while (!r.atEnd()) {
    const id = r.u32();
    const kind = KINDS[r.u8()];
    if (!kind) throw new Error("device thread: unknown job kind");
    const mechanism = r.u32();
    const session = r.bytes();
    const key = r.bytes();
    const fb = r.bytes();
    jobs.push({ id, kind, mechanism, session, key, fallbackKey: fb.length > 0 ? fb : undefined, iv: r.bytes(), aad: r.bytes(), input: r.bytes(), outputBytes: r.u32() });
  }
  return jobs;
}

export function encodeResults(results: readonly JobResult[]): ArrayBuffer {
  let size = 0;
  for (const x of results) size += 4 + 1 + 4 + 4 + (x.ok ? x.output.length : 0);
  const w = new Writer(size);
  for (const x of results) {
    w.u32(x.id);
    w.u8(x.ok ? (x.lostCopy ? 1 : 0) : 2);
    w.u32(x.ok ? 0 : (x.rv ?? NO_RV));
    w.bytes(x.ok ? x.output : EMPTY);
  }
  return w.done();
}

/** The results of a batch; outputs are views into `ab`. */
export function decodeResults(ab: ArrayBuffer): JobResult[] {
  const r = new Reader(ab);
  const out: JobResult[] = [];
  while (!r.atEnd()) {
    const id = r.u32();
    const status = r.u8();
    const rv = r.u32();
    const output = r.bytes();
    out.push(status === 2 ? { id, ok: false, rv: rv === NO_RV ? undefined : rv } : { id, ok: true, lostCopy: status === 1, output });
  }
  return out;
}

const EMPTY = new Uint8Array(0);

class Writer {
  private readonly buf: Buffer;
  private off = 0;
  constructor(size: number) {
    this.buf = Buffer.from(new ArrayBuffer(size)); // its own ArrayBuffer: transferable, never a pool slab
  }
  u8(v: number): void {
    this.off = this.buf.writeUInt8(v, this.off);
  }
  u32(v: number): void {
    this.off = this.buf.writeUInt32LE(v, this.off);
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }
  done(): ArrayBuffer {
    if (this.off !== this.buf.length) throw new Error("device thread: batch size mismatch");
    return this.buf.buffer as ArrayBuffer;
  }
}

class Reader {
  private readonly buf: Buffer;
  private off = 0;
  constructor(ab: ArrayBuffer) {
    this.buf = Buffer.from(ab);
  }
  atEnd(): boolean {
    return this.off >= this.buf.length;
  }
  u8(): number {
    return this.buf.readUInt8(this.off++);
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    if (this.off + n > this.buf.length) throw new Error("device thread: truncated batch");
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }
}
