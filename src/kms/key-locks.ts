/**
 * In-process mutual exclusion per key, for the changes that touch both the token and the record (rotation
 * and deletion): two of them on one key run one after the other, never interleaved. Metadata writes are
 * also compare-and-set, so the database stays consistent even without this; the lock spares the token
 * from objects that a lost race would have to clean up.
 *
 * WARNING: only one daemon may serve one database (SQLite is embedded), which is what makes an in-process
 * lock sufficient.
 */
export class KeyLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(keyId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(keyId) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(keyId, tail);
    try {
      return await result;
    } finally {
      // The last one out removes the entry, so the map holds only keys with work in flight.
      if (this.tails.get(keyId) === tail) this.tails.delete(keyId);
    }
  }
}

/** The process-wide lock table of key lifecycle changes. */
export const keyLocks = new KeyLocks();
