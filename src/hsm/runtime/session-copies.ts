import pkcs11js from "pkcs11js";
import { CKR, rvOf } from "./return-values.js";

/** Which object of a backing key a copy stands for. */
export type CopiedHalf = "secret" | "privateKey";

/** Per backing key bookkeeping, kept on the key's {@link KeyObjects} entry. */
export interface CopyState {
  /** Session-object copies, when made. */
  secretCopy?: pkcs11js.Handle;
  privateKeyCopy?: pkcs11js.Handle;
  /** Recent uses (halved periodically): the admission test when the copies are at capacity. */
  uses?: number;
}

export interface SessionCopyOptions {
  /** Most backing keys with a copy at a time (0 turns copies off). */
  readonly capacity: number;
}

/** What a copy keeps unchanged; asserted by tests, not relied on: C_CopyObject cannot relax them anyway. */
const COPY_TEMPLATE: pkcs11js.Template = [{ type: pkcs11js.CKA_TOKEN, value: false }];

/**
 * In-memory session-object copies of hot keys. SoftHSM2 re-reads (open, lock, read, close) a token object's
 * file on every C_*Init; on a session copy (C_CopyObject with CKA_TOKEN=false) the same AES-GCM 4 KB runs
 * 1.6–2.6× faster, and C_SignInit on an EC key ~1.8× (docs/benchmarks.md).
 *
 * The copies keep the original's CKA_SENSITIVE=true and CKA_EXTRACTABLE=false (PKCS#11 lets a copy only
 * tighten them), so their material is as unreadable as the token object's. A session object belongs to the
 * session that made it and vanishes when that session closes; every session of the application can use it.
 * So the copies live on one dedicated session outside the pool, opened lazily. When it is closed under us
 * (C_CloseAllSessions by the device-fault recovery, a device reset), using a copy fails with a handle
 * error: {@link lost} forgets every copy, the caller retries on the token object, and copies are made
 * again on later uses.
 *
 * Bounded: at most `capacity` keys have copies. Admission when full is frequency-based (a key's recent use
 * count must beat the least recently used copy's), so a uniform spread over more keys than the capacity
 * does not copy and destroy on every call; counts are halved every 8 × capacity uses so old popularity fades.
 *
 * Calls on the event loop use a copy within one synchronous block, so nothing can destroy it under them.
 * Calls sent to the device thread hold the copy across an await: they {@link pin} it, and a copy dropped
 * while pinned is destroyed when its last user {@link unpin}s it.
 */
export class SessionCopies {
  /** Labels with copies, least recently used first (Map insertion order). */
  private readonly lru = new Map<string, CopyState>();
  private owner: pkcs11js.Handle | undefined;
  private picks = 0;
  /** Copies in use by calls on the device thread, with their number of users. */
  private readonly pinned = new Map<pkcs11js.Handle, number>();
  /** Pinned copies already dropped: destroyed on their last unpin. */
  private readonly doomed = new Set<pkcs11js.Handle>();
  /** Copies made and copies lost with their session, for metrics and tests. */
  readonly stats = { made: 0, evicted: 0, lost: 0, failed: 0 };

  constructor(
    private readonly mod: pkcs11js.PKCS11,
    private readonly openSession: () => pkcs11js.Handle,
    private readonly options: SessionCopyOptions,
    private readonly everyEntry: () => Iterable<CopyState>,
  ) {}

  get size(): number {
    return this.lru.size;
  }

  /** The dedicated session holding the copies (undefined until the first copy); for tests. */
  get session(): pkcs11js.Handle | undefined {
    return this.owner;
  }

  /**
   * The handle to use for `half` of the key labelled `label`: its copy when there is one (or one can be made
   * now), else `token`. Synchronous; cheap on a hit (one Map move).
   */
  pick(label: string, state: CopyState, half: CopiedHalf, token: pkcs11js.Handle): pkcs11js.Handle {
    if (this.options.capacity <= 0) return token;
    const field = half === "secret" ? "secretCopy" : "privateKeyCopy";
    state.uses = (state.uses ?? 0) + 1;
    if (++this.picks >= 8 * this.options.capacity) this.age();
    const copy = state[field];
    if (copy !== undefined) {
      this.lru.delete(label);
      this.lru.set(label, state);
      return copy;
    }
    if (!this.admit(label, state)) return token;
    const made = this.copy(token);
    if (made === undefined) return token;
    state[field] = made;
    this.lru.set(label, state);
    return made;
  }

  /** Keeps `handle` (if a copy) from being destroyed until {@link unpin}. */
  pin(handle: pkcs11js.Handle): void {
    this.pinned.set(handle, (this.pinned.get(handle) ?? 0) + 1);
  }

  unpin(handle: pkcs11js.Handle): void {
    const n = (this.pinned.get(handle) ?? 1) - 1;
    if (n > 0) {
      this.pinned.set(handle, n);
      return;
    }
    this.pinned.delete(handle);
    if (this.doomed.delete(handle)) this.destroy(handle);
  }

  /** True when `err` from an Init on `handle` means the copy is gone with its session. */
  isLostCopy(handle: pkcs11js.Handle, token: pkcs11js.Handle, err: unknown): boolean {
    if (handle === token) return false;
    const rv = rvOf(err);
    return rv === CKR.KEY_HANDLE_INVALID || rv === CKR.OBJECT_HANDLE_INVALID;
  }

  /**
   * The dedicated session is gone (its copies with it): forget them without destroying anything, and open
   * a new session for the next copy.
   */
  lost(): void {
    this.stats.lost += this.lru.size;
    for (const state of this.lru.values()) clearCopies(state);
    this.lru.clear();
    this.doomed.clear(); // gone with the session already
    this.owner = undefined;
  }

  /** Destroys the copies of one backing key (material destroyed or quarantined, key disabled or deleted). */
  drop(label: string): void {
    const state = this.lru.get(label);
    if (!state) return;
    this.lru.delete(label);
    this.destroyCopies(state);
  }

  /** Destroys every copy whose label passes `match` (e.g. every version of one key). */
  dropWhere(match: (label: string) => boolean): void {
    for (const label of [...this.lru.keys()]) if (match(label)) this.drop(label);
  }

  /**
   * Destroys every copy and closes the dedicated session. The owner calls it once no call is running
   * (pinned copies included: closing the session destroys them whatever their pins).
   */
  close(): void {
    for (const label of [...this.lru.keys()]) this.drop(label);
    if (this.owner !== undefined) {
      try {
        this.mod.C_CloseSession(this.owner);
      } catch {
        // Already gone with the device: nothing to release.
      }
      this.owner = undefined;
    }
    this.doomed.clear();
  }

  private admit(label: string, state: CopyState): boolean {
    if (this.lru.size < this.options.capacity) return true;
    const [victimLabel, victim] = this.lru.entries().next().value!;
    if ((state.uses ?? 0) <= (victim.uses ?? 0)) return false;
    this.lru.delete(victimLabel);
    this.destroyCopies(victim);
    this.stats.evicted++;
    void label;
    return true;
  }

  private copy(token: pkcs11js.Handle): pkcs11js.Handle | undefined {
    try {
      this.owner ??= this.openSession();
      const h = this.mod.C_CopyObject(this.owner, token, COPY_TEMPLATE);
      this.stats.made++;
      return h;
    } catch (err) {
      // No copy is no failure: the token object still works. A dead dedicated session is reopened next time.
      this.stats.failed++;
      const rv = rvOf(err);
      if (rv === CKR.SESSION_HANDLE_INVALID || rv === CKR.SESSION_CLOSED) this.lost();
      return undefined;
    }
  }

  private destroyCopies(state: CopyState): void {
    for (const h of [state.secretCopy, state.privateKeyCopy]) {
      if (h === undefined) continue;
      if (this.pinned.has(h)) this.doomed.add(h);
      else this.destroy(h);
    }
    clearCopies(state);
  }

  private destroy(h: pkcs11js.Handle): void {
    if (this.owner === undefined) return;
    try {
      this.mod.C_DestroyObject(this.owner, h);
    } catch {
      // Gone already (the session was closed under us): nothing to destroy.
    }
  }

  /** Halves every use count, so yesterday's hot keys do not keep today's out forever. */
  private age(): void {
    this.picks = 0;
    for (const s of this.everyEntry()) if (s.uses) s.uses >>= 1;
  }
}

function clearCopies(state: CopyState): void {
  delete state.secretCopy;
  delete state.privateKeyCopy;
}
