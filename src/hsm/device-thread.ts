import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type GcmJob, decodeResults, encodeJobs } from "./device-thread-protocol.js";

/** One AES-GCM call for the device thread: an Init on `key` and the one-part operation, on `session`. */
export type DeviceJob = Omit<GcmJob, "id">;

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
}

/**
 * A second JS thread for the hot device calls (AES-GCM). The
 * event loop is the daemon's bottleneck: gRPC, authorization and the audit log all run there, and on
 * SoftHSM2 an AES-GCM Init + Encrypt costs 20–40 µs of it. Here the calls of one event-loop turn go to
 * this thread as one message and come back as one, so under load the event loop pays a few µs per call
 * instead (docs/benchmarks.md). Calls keep their session borrowed from the pool until the answer is
 * back, so the pool's own accounting (drain on close, one operation per session) still holds.
 *
 * If the thread dies, its calls fail (internal error, logged) and the next call starts a new thread.
 */
export class DeviceThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private queue: GcmJob[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;

  /** Calls and messages sent so far (calls per message tells how well batching works, for metrics). */
  readonly stats = { calls: 0, messages: 0 };

  /** Calls sent and not yet answered (a gauge). */
  get inFlight(): number {
    return this.waiting.size;
  }

  constructor(private readonly modulePath: string) {}

  run(job: DeviceJob): Promise<{ output: Buffer; lostCopy: boolean }> {
    if (this.closed) return Promise.reject(new Error("the device thread is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.queue.push({ ...job, id });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate: every call made in this turn of the event loop travels in the same message.
        setImmediate(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.stats.calls += batch.length;
    this.stats.messages++;
    try {
      const message = encodeJobs(batch);
      this.thread().postMessage(message, [message]);
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
      for (const id of [...this.waiting.keys()]) this.settleError(id, err);
    };
    w.on("error", failAll);
    w.on("exit", (code) => failAll(new Error(`the device thread exited (code ${code})`)));
    this.worker = w;
    return w;
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
    t = new DeviceThread(modulePath);
    threads.set(modulePath, t);
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
  const built = new URL(url.href.replace(/\/src\/hsm\/device-thread-worker\.js$/, "/dist/hsm/device-thread-worker.js"));
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`the device thread's script is missing (${fileURLToPath(url)}); build the project first`);
}
