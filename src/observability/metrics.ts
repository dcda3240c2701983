import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface PoolUsage {
  readonly open: number;
  readonly idle: number;
  readonly waiting: number;
  readonly copies: number;
}

/** The device thread's counters since the process started (keyStores[].deviceThread). */
export interface DeviceThreadUsage {
  readonly calls: number;
  readonly messages: number;
}

/** Prometheus metrics of one daemon: request counts and latencies per API, operation and outcome. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "p11kms_requests_total",
    help: "Requests by API, operation and outcome (OK or the AWS exception name).",
    labelNames: ["api", "operation", "outcome"] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: "p11kms_request_duration_seconds",
    help: "Time from decoded request to encoded response.",
    labelNames: ["api", "operation"] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  /** Requests refused with ThrottlingException, by quota class (no principal label: unbounded cardinality). */
  readonly throttled = new Counter({
    name: "p11kms_quota_throttled_total",
    help: "Requests refused because the caller exceeded a request quota, by API and quota class.",
    labelNames: ["api", "class"] as const,
    registers: [this.registry],
  });
  /** The configured per-caller quotas (requests per second), so dashboards can draw the limit. */
  readonly quotaLimit = new Gauge({
    name: "p11kms_quota_limit_per_second",
    help: "Configured request quota per caller, by quota class (absent when quotas are disabled).",
    labelNames: ["class"] as const,
    registers: [this.registry],
  });

  /** The "someone still uses a key we are deleting" alarm, by operation. */
  readonly pendingDeletionUse = new Counter({
    name: "p11kms_pending_deletion_key_use_total",
    help: "Requests that tried to use a key pending deletion (refused), by operation.",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });
  readonly keysDeleted = new Counter({
    name: "p11kms_keys_deleted_total",
    help: "Keys the deletion reaper deleted (token objects destroyed).",
    registers: [this.registry],
  });
  readonly keyRotations = new Counter({
    name: "p11kms_key_rotations_total",
    help: "Key rotations (new backing-key versions), by type (AUTOMATIC, ON_DEMAND).",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly lifecycleDeferred = new Counter({
    name: "p11kms_lifecycle_jobs_deferred_total",
    help: "Due deletions or rotations that could not run (key store disconnected, device error), by job.",
    labelNames: ["job"] as const,
    registers: [this.registry],
  });

  /** Device call latency inside a session (queueing for a session excluded), by operation and mechanism. */
  readonly hsmCalls = new Histogram({
    name: "p11kms_hsm_call_duration_seconds",
    help: "Duration of PKCS#11 calls (Init + operation) inside a session, by operation and mechanism family.",
    labelNames: ["key_store", "operation", "mechanism"] as const,
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
    registers: [this.registry],
  });
  private readonly hsmChildren = new Map<string, { observe(v: number): void }>();
  private readonly poolSources = new Map<string, () => PoolUsage | undefined>();
  /** Where the device thread's counters are read at scrape time (see {@link watchDeviceThread}). */
  private deviceThreadSource: (() => DeviceThreadUsage) | undefined;

  /** Audit events waiting to be written (the group-commit queue). */
  readonly auditBacklog = new Gauge({
    name: "p11kms_audit_backlog_events",
    help: "Audit events queued and not yet written to the audit log.",
    registers: [this.registry],
  });
  readonly auditWriteFailures = new Counter({
    name: "p11kms_audit_write_failures_total",
    help: "Audit log writes that failed (with sync durability, each failed the requests of its batch).",
    registers: [this.registry],
  });
  readonly auditRotationFailures = new Counter({
    name: "p11kms_audit_rotation_failures_total",
    help: "Audit log rotations that failed after their batch was written (no event lost; the file grows past its size until rotated).",
    registers: [this.registry],
  });
  readonly auditEvents = new Counter({
    name: "p11kms_audit_events_total",
    help: "Audit events written to the audit log.",
    registers: [this.registry],
  });
  readonly auditDigests = new Counter({
    name: "p11kms_audit_digests_total",
    help: "Signed audit digest records, by outcome (written, failed: the signing key was unavailable).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly auditWatchDropped = new Counter({
    name: "p11kms_audit_watch_dropped_total",
    help: "Audit events not delivered to a WatchAuditEvents subscriber that could not keep up.",
    registers: [this.registry],
  });
  /** 1 for each store's current ConnectionState, 0 for the others (alert on state="FAILED" == 1). */
  readonly keyStoreState = new Gauge({
    name: "p11kms_key_store_state",
    help: "Key store connection state: 1 for the current ConnectionState of each store, 0 for the others.",
    labelNames: ["key_store", "state"] as const,
    registers: [this.registry],
  });
  readonly deviceThreadCalls = new Counter({
    name: "p11kms_device_thread_calls_total",
    help: "PKCS#11 calls run on the device thread (keyStores[].deviceThread).",
    registers: [this.registry],
    collect: countFrom(() => this.deviceThreadSource?.().calls),
  });
  readonly deviceThreadMessages = new Counter({
    name: "p11kms_device_thread_messages_total",
    help: "Messages to the device thread: calls / messages is the batching the event loop gets under load.",
    registers: [this.registry],
    collect: countFrom(() => this.deviceThreadSource?.().messages),
  });
  readonly hsmErrors = new Counter({
    name: "p11kms_hsm_errors_total",
    help: "Failed PKCS#11 calls by key store, class (data: the caller's fault; session; token; other) and CK_RV name.",
    labelNames: ["key_store", "class", "rv"] as const,
    registers: [this.registry],
  });
  readonly sessionRetries = new Counter({
    name: "p11kms_hsm_session_retries_total",
    help: "Calls re-run on a fresh session after a session-level error, by key store and outcome (recovered, failed).",
    labelNames: ["key_store", "outcome"] as const,
    registers: [this.registry],
  });
  readonly keyStoreFaults = new Counter({
    name: "p11kms_key_store_faults_total",
    help: "Times a connected key store went FAILED because its device failed, by key store and ConnectionErrorCode.",
    labelNames: ["key_store", "code"] as const,
    registers: [this.registry],
  });
  readonly reconnectAttempts = new Counter({
    name: "p11kms_key_store_reconnect_attempts_total",
    help: "Background reconnect attempts of FAILED key stores, by key store and outcome (connected, failed).",
    labelNames: ["key_store", "outcome"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const sources = this.poolSources;
    new Gauge({
      name: "p11kms_hsm_sessions",
      help: "Sessions of each key store's pool, by state (in_use, idle).",
      labelNames: ["key_store", "state"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [id, read] of sources) {
          const u = read();
          if (!u) continue;
          this.set({ key_store: id, state: "in_use" }, u.open - u.idle);
          this.set({ key_store: id, state: "idle" }, u.idle);
        }
      },
    });
    new Gauge({
      name: "p11kms_hsm_session_waiters",
      help: "Callers waiting for a session of each key store (every session busy).",
      labelNames: ["key_store"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [id, read] of sources) {
          const u = read();
          if (u) this.set({ key_store: id }, u.waiting);
        }
      },
    });
    new Gauge({
      name: "p11kms_hsm_session_key_copies",
      help: "Keys held as in-memory session copies by each key store (keyStores[].sessionCopies bounds it).",
      labelNames: ["key_store"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [id, read] of sources) {
          const u = read();
          if (u) this.set({ key_store: id }, u.copies);
        }
      },
    });
  }

  /** An observer for one key store's device calls (pre-bound label sets: no label hashing per call). */
  hsmObserver(keyStoreId: string): (operation: string, mechanism: string, seconds: number) => void {
    return (operation, mechanism, seconds) => {
      const k = `${operation}\0${mechanism}`;
      let child = this.hsmChildren.get(k + "\0" + keyStoreId);
      if (!child) {
        child = this.hsmCalls.labels(keyStoreId, operation, mechanism);
        this.hsmChildren.set(k + "\0" + keyStoreId, child);
      }
      child.observe(seconds);
    };
  }

  /** Registers where a key store's session-pool usage is read at scrape time (undefined: not connected). */
  watchPool(keyStoreId: string, read: () => PoolUsage | undefined): void {
    this.poolSources.set(keyStoreId, read);
  }

  /** Registers where the device thread's counters are read at scrape time (none registered: they read 0). */
  watchDeviceThread(read: () => DeviceThreadUsage): void {
    this.deviceThreadSource = read;
  }

  /** Serves GET /metrics on host:port. */
  async listen(host: string, port: number): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.method !== "GET" || req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": this.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }
}

/** A counter's collect(): set to what `read` says at scrape time (0 while it says nothing). */
function countFrom(read: () => number | undefined): (this: Counter) => void {
  return function (this: Counter) {
    this.reset();
    const n = read();
    if (n !== undefined) this.inc(n);
  };
}
