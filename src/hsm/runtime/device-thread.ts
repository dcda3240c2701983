import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type JobCall, type QueuedJob, decodeResults, encodeJobs } from "./device-thread-protocol.js";
import { registerModuleUser } from "./module.js";
import { CallTimeoutError } from "./session-pool.js";

/** One call for the device thread: an Init on `key` and the one-part operation (the session comes apart). */
export type DeviceJob = JobCall;

/** A PKCS#11 failure on the device thread, with its CK_RV as `code` (as pkcs11js errors carry it). */
export class DeviceThreadCallError extends Error {
  override readonly name = "DeviceThreadCallError";
  constructor(
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

interface Waiting {
  resolve(r: { output: Buffer; lostCopy: boolean }): void;
  reject(err: unknown): void;
  /** Date.now() past which the call is answered with CallTimeoutError. */
  readonly deadline: number;
  readonly timeoutMs: number;
  /** The thread the call was sent to (once sent). */
  worker?: Worker;
}

/** How often calls are checked against their deadline (one timer for all of them, not one per call). */
const DEADLINE_CHECK_MS = 200;

/**
 * Default number of device calls per event-loop turn that run on the loop itself while the thread is idle.
 * A lone call gains nothing from the thread but pays two thread wake-ups, which on a busy 2-core machine
 * put milliseconds on the latency tail (bench/ab: paced p99 8 ms on the loop vs 11–20 ms always on the thread).
 */
export const DEFAULT_INLINE_PER_TURN = 2;

/**
 * A second JS thread for the hot device calls (AES-GCM, and ECDSA P-256 on session copies). The
 * event loop is the daemon's bottleneck: gRPC, authorization and the audit log all run there, and on
 * SoftHSM2 an AES-GCM Init + Encrypt costs 20–40 µs of it. Here the calls of one event-loop turn go to
 * this thread as one message and come back as one, so under load the event loop pays a few µs per call
 * instead; at low load calls stay on the event loop (see {@link DeviceThread.offload}) (docs/operations.md, "The device thread"). The calls bring their session: each key store runs
 * its device-thread calls on one session of its own (thread-session.ts), which only this thread uses.
 *
 * If the thread dies, its calls fail (internal error, logged) and the next call starts a new thread. If a
 * call outlives its timeout (the module hangs), every call sent to that thread answers CallTimeoutError
 * and the thread is abandoned — a thread inside a native call cannot be stopped — and the next call
 * starts a new one.
 */
export class DeviceThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private queue: QueuedJob[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private turnCalls = 0;
  private turnReset = false;
  /** Calls in the last message sent: how busy the stream of calls was when the thread last went idle. */
  private lastBatch = 0;
  /** Threads given up on (stuck in the module past a call timeout) that have not exited. */
  private abandoned = 0;

  /** Calls and messages sent so far (calls per message tells how well batching works, for metrics). */
  readonly stats = { calls: 0, messages: 0 };

  /** Calls sent and not yet answered (a gauge). */
  get inFlight(): number {
    return this.waiting.size;
  }

  /** Whether some thread of this module's may be inside a PKCS#11 call now (never finalise the module then). */
  get inside(): boolean {
    return this.waiting.size > 0 || this.abandoned > 0;
  }

  constructor(private readonly modulePath: string) {}

  /**
   * Whether the next device call should come here rather than run on the event loop: yes while the thread
   * has calls in flight (load is high enough that batching pays), while the last message it got carried
   * more than `inlinePerTurn` calls, or once this event-loop turn has already had `inlinePerTurn` device calls.
   */
  offload(inlinePerTurn: number): boolean {
    if (this.waiting.size > 0) return true;
    // Under full load the thread is idle for a moment after each answer; calls arriving then belong to the
    // same busy stream, and run on the loop they would spend its time on device work (~2 % of the loop for
    // AES-GCM 4 KB, more for P-256 signing in bench/cpu). Once load falls, the batches shrink to
    // `inlinePerTurn` calls or fewer, and lone calls stay on the loop again.
    if (this.lastBatch > inlinePerTurn) return true;
    if (!this.turnReset) {
      this.turnReset = true;
      setImmediate(() => {
        this.turnReset = false;
        this.turnCalls = 0;
      });
    }
    return ++this.turnCalls > inlinePerTurn;
  }

  /** Runs `job` on `session`; past `timeoutMs` (0: no limit) it answers CallTimeoutError. */
  run(job: DeviceJob, session: Uint8Array, timeoutMs = 0): Promise<{ output: Buffer; lostCopy: boolean }> {
    if (this.closed) return Promise.reject(new Error("the device thread is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, timeoutMs, deadline: timeoutMs > 0 ? Date.now() + timeoutMs : Infinity });
      this.queue.push({ id, session, call: job });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate: every call made in this turn of the event loop travels in the same message.
        setImmediate(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.deadlineTimer);
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.lastBatch = batch.length;
    this.stats.calls += batch.length;
    this.stats.messages++;
    try {
      const message = encodeJobs(batch);
      const w = this.thread();
      w.postMessage(message, [message]);
      for (const job of batch) {
        const waiter = this.waiting.get(job.id);
        if (waiter) waiter.worker = w;
      }
    } catch (err) {
      for (const job of batch) this.settleError(job.id, err);
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerScript(), { workerData: { modulePath: this.modulePath } });
    w.unref(); // never what keeps the process alive
    w.on("message", (message: ArrayBuffer) => {
      for (const r of decodeResults(message)) {
        const waiter = this.waiting.get(r.id);
        if (!waiter) continue;
        this.waiting.delete(r.id);
        if (r.ok) waiter.resolve({ output: r.output, lostCopy: r.lostCopy });
        else waiter.reject(new DeviceThreadCallError(r.rv, `PKCS#11 call on the device thread failed${r.rv === undefined ? "" : ` with CK_RV 0x${r.rv.toString(16)}`}`));
      }
    });
    const failAll = (err: unknown) => {
      if (this.worker === w) this.worker = undefined;
      this.failCallsOf(w, err);
    };
    w.on("error", failAll);
    w.on("exit", (code) => failAll(new Error(`the device thread exited (code ${code})`)));
    this.worker = w;
    this.deadlineTimer ??= setInterval(() => this.checkDeadlines(), DEADLINE_CHECK_MS).unref();
    return w;
  }

  /** A call past its deadline means the thread is stuck in the module: give up on it and on its calls. */
  private checkDeadlines(): void {
    if (this.waiting.size === 0) return;
    const now = Date.now();
    let expired: Waiting | undefined;
    for (const w of this.waiting.values()) if (w.deadline < now) expired = w;
    if (!expired) return;
    const stuck = expired.worker;
    if (!stuck) return; // not sent yet: the next turn sends it
    if (this.worker === stuck) this.worker = undefined;
    this.failCallsOf(stuck, new CallTimeoutError(expired.timeoutMs));
    this.abandoned++;
    stuck.once("exit", () => this.abandoned--);
    void stuck.terminate(); // takes effect if the native call ever returns
  }

  private failCallsOf(w: Worker, err: unknown): void {
    for (const [id, waiter] of [...this.waiting]) if (waiter.worker === w) this.settleError(id, err);
  }

  private settleError(id: number, err: unknown): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    this.waiting.delete(id);
    waiter.reject(err);
  }
}

const threads = new Map<string, DeviceThread>();

/**
 * The process's device thread for a PKCS#11 module (one serves every key store on that module: the event
 * loop is the scarce resource, not the device).
 */
export function deviceThreadFor(modulePath: string): DeviceThread {
  let t = threads.get(modulePath);
  if (!t) {
    const thread = new DeviceThread(modulePath);
    registerModuleUser(modulePath, () => thread.inside);
    threads.set(modulePath, thread);
    t = thread;
  }
  return t;
}

/** Totals over every device thread of the process (metrics). */
export function deviceThreadStats(): { calls: number; messages: number; inFlight: number } {
  const total = { calls: 0, messages: 0, inFlight: 0 };
  for (const t of threads.values()) {
    total.calls += t.stats.calls;
    total.messages += t.stats.messages;
    total.inFlight += t.inFlight;
  }
  return total;
}

/**
 * The compiled worker script. Under the test runner this module is TypeScript, which a worker thread
 * cannot load: it then uses the build's copy (`make test` builds first).
 */
function workerScript(): URL {
  const url = new URL("./device-thread-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(url))) return url;
  const built = new URL(url.href.replace(/\/src\/hsm\/runtime\/device-thread-worker\.js$/, "/dist/hsm/runtime/device-thread-worker.js"));
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`the device thread's script is missing (${fileURLToPath(url)}); build the project first`);
}
