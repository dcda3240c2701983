import type pkcs11js from "pkcs11js";
import { DEFAULT_INLINE_PER_TURN, type DeviceJob, type DeviceThread } from "./device-thread.js";
import { rvOf } from "./return-values.js";
import type { CopiedHalf, CopyState, SessionCopies } from "./session-copies.js";
import { CallTimeoutError, PoolClosedError, sessionLostWith } from "./session-pool.js";

/**
 * The one session a key store's device-thread calls run on. The device thread runs its calls one after
 * another, so one session serves them all — none is borrowed from the pool, whose size would otherwise
 * cap how many calls travel in one message (and make the rest queue for sessions on the event loop).
 *
 * A failure that means the session was lost (closed behind our back; see sessionLostWith) is retried once
 * on a fresh session, as the pool does; a handle error on a session that lost its login is marked so, for
 * the device to take the store offline. The failed session is abandoned, not closed: other calls of the same message may still
 * be on it in the device thread; {@link close} closes it with the rest once nothing runs.
 */
export class ThreadSession {
  private session: pkcs11js.Handle | undefined;
  private readonly abandoned: pkcs11js.Handle[] = [];
  private running = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly thread: DeviceThread,
    private readonly mod: pkcs11js.PKCS11,
    private readonly openSession: () => pkcs11js.Handle,
    /** keyStores[].callTimeoutMs: a call not answered by then is a device fault (0: no limit). */
    private readonly timeoutMs: number,
    private readonly onRetried?: (rv: number | undefined, recovered: boolean) => void,
    /** Device calls per event-loop turn kept on the loop while the thread is idle (0: every call goes to the thread). */
    private readonly inlinePerTurn = DEFAULT_INLINE_PER_TURN,
  ) {}

  /** Whether this call should go to the device thread now (see DeviceThread.offload). */
  offload(): boolean {
    return this.thread.offload(this.inlinePerTurn);
  }

  /**
   * Runs `job` on `half` of a key: its session copy (made now if admitted), else the token object. The copy
   * is pinned until the answer is back, so dropping it meanwhile cannot destroy it under the thread; a copy
   * gone with its session is retried there on the token object, and `copies` is told.
   */
  async runOnKey(
    copies: SessionCopies,
    key: { readonly label: string; readonly state: CopyState; readonly half: CopiedHalf; readonly token: pkcs11js.Handle },
    job: Omit<DeviceJob, "key" | "fallbackKey">,
  ): Promise<Buffer> {
    const handle = copies.pick(key.label, key.state, key.half, key.token);
    copies.pin(handle);
    try {
      const r = await this.run({ ...job, key: handle, fallbackKey: handle === key.token ? undefined : key.token });
      if (r.lostCopy) copies.lost();
      return r.output;
    } finally {
      copies.unpin(handle);
    }
  }

  /** Runs `job` on the device thread; rejects with PoolClosedError once the store is closing. */
  async run(job: DeviceJob): Promise<{ output: Buffer; lostCopy: boolean }> {
    if (this.closed) throw new PoolClosedError();
    this.running++;
    try {
      const first = this.current();
      try {
        return await this.thread.run(job, first, this.timeoutMs);
      } catch (err) {
        if (err instanceof CallTimeoutError && this.session === first) {
          // The module may still be inside a call on it: never used or closed again.
          this.session = undefined;
          throw err;
        }
        const rv = rvOf(err);
        if (!sessionLostWith(this.mod, first, rv, err) || this.closed) throw err;
        if (this.session === first) {
          this.abandoned.push(first);
          this.session = undefined;
        }
        const fresh = this.current();
        try {
          const r = await this.thread.run(job, fresh, this.timeoutMs);
          this.onRetried?.(rv, true);
          return r;
        } catch (retryErr) {
          this.onRetried?.(rv, false);
          sessionLostWith(this.mod, fresh, rvOf(retryErr), retryErr); // marks a lost login for the device
          throw retryErr;
        }
      }
    } finally {
      if (--this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Refuses new calls, waits for the running ones (at most `waitMs`), then closes the sessions. */
  async close(waitMs: number): Promise<boolean> {
    this.closed = true;
    if (this.running > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = await Promise.race([
        new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true))),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
      ]);
      clearTimeout(timer);
      // A call stuck in the device keeps its session: closing it under the thread could crash the module.
      if (!idle) return false;
    }
    for (const s of [...this.abandoned.splice(0), ...(this.session ? [this.session] : [])]) {
      try {
        this.mod.C_CloseSession(s);
      } catch {
        // Gone with the device already: nothing to release.
      }
    }
    this.session = undefined;
    return true;
  }

  private current(): pkcs11js.Handle {
    this.session ??= this.openSession();
    return this.session;
  }
}
