import type { ServiceDeps } from "./deps.js";
import { expireMaterial } from "./import-operations.js";
import { keyLocks } from "./key-locks.js";
import { rotateKey } from "./rotation.js";
import type { KeyRecord } from "./types.js";

/** What one pass of {@link LifecycleJobs.tick} did. */
export interface JobReport {
  /** Keys whose deletion deadline passed: token objects destroyed, record now a tombstone. */
  deleted: string[];
  /** Scheduled rotations: the key and its new current version. */
  rotated: { keyId: string; version: number }[];
  /** Keys whose imported material reached its ValidTo: destroyed, key back in PendingImport. */
  expired: string[];
  /** Due jobs that could not run now (key store not connected, device error): retried next tick. */
  deferred: string[];
}

/**
 * The deletion reaper and the automatic rotation schedule, driven by the Clock port: each tick looks up in
 * the database what is due *now* and does it, so a deadline that passed while the daemon was down is handled
 * by the first tick after start, and tests move the clock instead of sleeping. Ticks never overlap.
 *
 * Deletion order (crash-safe): (1) the record becomes a tombstone — invisible, aliases and schedule removed —
 * in one transaction, (2) every version's token objects (both halves of a pair) are destroyed. A crash
 * between the two leaves a tombstone with objects, which start-up reconciliation destroys; there is never
 * a visible key whose material is half gone.
 */
export class LifecycleJobs {
  private running: Promise<JobReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Tombstones whose objects could not all be destroyed yet (device error): retried every tick. */
  private readonly unfinished = new Map<string, KeyRecord>();

  constructor(
    private readonly deps: ServiceDeps,
    private readonly batchSize = 100,
  ) {}

  /** Runs due jobs every `intervalMs` (the timer does not keep the process alive). */
  start(intervalMs: number): void {
    this.timer ??= setInterval(() => void this.tick().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass; a tick already running is joined rather than started twice. */
  tick(): Promise<JobReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<JobReport> {
    const report: JobReport = { deleted: [], rotated: [], expired: [], deferred: [] };
    const now = this.deps.clock.now();
    for (const tomb of [...this.unfinished.values()]) await this.destroyMaterial(tomb, report);
    for (const key of await this.deps.metadata.dueDeletions(now, this.batchSize)) await this.reap(key, now, report);
    const connected = [...this.deps.keyStores.keys()];
    for (const schedule of await this.deps.metadata.dueRotations(now, connected)) {
      try {
        const version = await rotateKey(this.deps, schedule.keyId, "AUTOMATIC", schedule);
        if (version !== undefined) report.rotated.push({ keyId: schedule.keyId, version });
      } catch (err) {
        this.defer(schedule.keyId, "rotation", "the rotation failed", report, err);
      }
    }
    await this.expireImports(now, report);
    return report;
  }

  /** Imported material past its ValidTo; and wrapping keys whose import parameters expired. */
  private async expireImports(now: Date, report: JobReport): Promise<void> {
    for (const key of await this.deps.metadata.dueMaterialExpirations(now, this.batchSize)) {
      if (!this.deps.keyStores.has(key.keyStoreId)) {
        this.defer(key.keyId, "expiry", `key store '${key.keyStoreId}' is not connected`, report);
        continue;
      }
      try {
        if (await expireMaterial(this.deps, key)) report.expired.push(key.keyId);
      } catch (err) {
        this.defer(key.keyId, "expiry", "destroying the expired material failed", report, err);
      }
    }
    for (const store of this.deps.keyStores.values()) {
      await store.destroyExpiredWrappingKeys(now).catch((err: unknown) => this.defer(store.id, "expiry", "destroying expired wrapping keys failed", report, err));
    }
  }

  private async reap(key: KeyRecord, now: Date, report: JobReport): Promise<void> {
    // Destroying needs the device: with the store disconnected the key stays PendingDeletion until it returns.
    if (!this.deps.keyStores.has(key.keyStoreId)) {
      this.defer(key.keyId, "deletion", `key store '${key.keyStoreId}' is not connected`, report);
      return;
    }
    await keyLocks.run(key.keyId, async () => {
      const fresh = await this.deps.metadata.getKey(key.keyId); // a rotation may have added versions meanwhile
      if (!fresh || !(await this.deps.metadata.markDeleted(key.keyId, now))) return; // cancelled in between
      report.deleted.push(key.keyId);
      await this.destroyMaterial(fresh, report);
    });
  }

  private async destroyMaterial(key: KeyRecord, report: JobReport): Promise<void> {
    const store = this.deps.keyStores.get(key.keyStoreId);
    try {
      if (!store) throw new Error(`key store '${key.keyStoreId}' is not connected`);
      for (let v = 1; v <= key.currentVersion; v++) await store.destroyKey({ keyId: key.keyId, version: v });
      this.unfinished.delete(key.keyId);
      this.deps.events?.keyDeleted({ keyId: key.keyId, keyStoreId: key.keyStoreId, versions: key.currentVersion });
    } catch (err) {
      this.unfinished.set(key.keyId, key);
      this.defer(key.keyId, "deletion", "destroying the token objects failed", report, err);
    }
  }

  private defer(keyId: string, job: "deletion" | "rotation" | "expiry", reason: string, report: JobReport, err?: unknown): void {
    report.deferred.push(keyId);
    this.deps.events?.jobDeferred({ keyId, job, reason, err });
  }
}
