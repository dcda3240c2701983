/**
 * A FIFO of buffers: stream chunks go in whole, frames come out as slices of them. Taking slices instead of
 * concatenating lets a 64 KiB frame straddle two chunks without copying it.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Removes the first `n` bytes and returns them as slices (views of the pushed chunks). */
  takeSlices(n: number): Buffer[] {
    if (n > this.length) throw new RangeError("not enough bytes queued");
    const out: Buffer[] = [];
    while (n > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      if (avail <= n) {
        out.push(this.head === 0 ? c : c.subarray(this.head));
        this.chunks.shift();
        this.head = 0;
        n -= avail;
        this.length -= avail;
      } else {
        out.push(c.subarray(this.head, this.head + n));
        this.head += n;
        this.length -= n;
        n = 0;
      }
    }
    return out;
  }

  /** Removes the first `n` bytes as one buffer (copies only when they span chunks). */
  take(n: number): Buffer {
    const s = this.takeSlices(n);
    return s.length === 1 ? s[0]! : Buffer.concat(s, n);
  }

  /** The first `n` bytes without removing them (n ≤ length). */
  peek(n: number): Buffer {
    const s = this.takeSlices(n);
    // Put them back in front (cheap, slices are views), after folding the offset into the first chunk.
    if (this.head > 0) this.chunks[0] = this.chunks[0]!.subarray(this.head);
    this.chunks = [...s, ...this.chunks];
    this.head = 0;
    this.length += n;
    return s.length === 1 ? s[0]! : Buffer.concat(s, n);
  }

  /** Everything queued, as one buffer (for the header, which may arrive in pieces). */
  all(): Buffer {
    return this.length === 0 ? Buffer.alloc(0) : this.peek(this.length);
  }
}
