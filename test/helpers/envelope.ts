import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Transform } from "node:stream";
import { parseHeader } from "../../packages/client/src/envelope/header.js";

/** Runs `input` through `t` in chunks of `chunk` bytes; returns the output and the error, if any. */
export async function run(t: Transform, input: Buffer, chunk = 7919): Promise<{ out: Buffer; err?: Error & { code?: string } }> {
  const parts: Buffer[] = [];
  const pieces = function* () {
    for (let i = 0; i < input.length; i += chunk) yield input.subarray(i, i + chunk);
  };
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      parts.push(Buffer.from(c));
      cb();
    },
  });
  try {
    await pipeline(Readable.from(pieces()), t, sink);
    return { out: Buffer.concat(parts) };
  } catch (err) {
    return { out: Buffer.concat(parts), err: err as Error & { code?: string } };
  }
}

/** The byte ranges of a message's header and frames (to tamper with them). */
export function layout(message: Buffer): { headerEnd: number; frames: { start: number; end: number }[] } {
  const p = parseHeader(message)!;
  const frames: { start: number; end: number }[] = [];
  let off = p.end;
  while (off < message.length) {
    const final = message.readUInt32BE(off) === 0xffffffff;
    const len = final ? message.readUInt32BE(off + 8) : p.header.frameLength;
    const end = off + (final ? 12 : 4) + len + 16;
    frames.push({ start: off, end });
    off = end;
    if (final) break;
  }
  return { headerEnd: p.end, frames };
}

/** Deterministic pseudo-random bytes (a test that fails can be re-run with the same data). */
export function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
