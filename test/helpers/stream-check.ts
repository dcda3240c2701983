import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";

/**
 * A generated stream of `total` bytes that is never stored: chunk i is a fixed random block with i written
 * in its first 8 bytes, so every position has a known, non-repeating-per-chunk value. `verifier` checks a
 * stream against it position by position, however the bytes are re-chunked on the way.
 */
export function generatedStream(total: number, chunkSize = 64 * 1024): { source: () => Readable; verifier: () => Writable & { received: () => number } } {
  const block = randomBytes(chunkSize);
  const chunk = (i: number) => {
    const c = Buffer.from(block);
    c.writeBigUInt64BE(BigInt(i), 0);
    return c;
  };
  return {
    source: () => {
      let i = 0;
      return new Readable({
        read() {
          const off = i * chunkSize;
          if (off >= total) return void this.push(null);
          const c = chunk(i++);
          this.push(off + chunkSize <= total ? c : c.subarray(0, total - off));
        },
      });
    },
    verifier: () => {
      let pos = 0;
      let cur = -1;
      let expected = block;
      const w = new Writable({
        write(data: Buffer, _e, cb) {
          let off = 0;
          while (off < data.length) {
            const i = Math.floor(pos / chunkSize);
            if (i !== cur) {
              expected = chunk(i);
              cur = i;
            }
            const at = pos % chunkSize;
            const n = Math.min(data.length - off, chunkSize - at);
            if (pos + n > total || !data.subarray(off, off + n).equals(expected.subarray(at, at + n))) {
              return cb(new Error(`output differs from the input at or after byte ${pos}`));
            }
            off += n;
            pos += n;
          }
          cb();
        },
        final(cb) {
          cb(pos === total ? null : new Error(`output has ${pos} bytes, expected ${total}`));
        },
      });
      return Object.assign(w, { received: () => pos });
    },
  };
}
