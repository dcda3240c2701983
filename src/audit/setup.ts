import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { Config } from "../config/schema.js";
import type { Partition } from "../kms/key-ids.js";
import type { Clock } from "../kms/ports.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { type Auditor, NO_AUDIT, RequestAuditor } from "./auditor.js";
import { FileAuditLog } from "./file-log.js";
import { AuditHub } from "./hub.js";
import { writePublicKeyFile } from "./public-key-file.js";
import type { AuditSigner } from "./signer.js";

export interface AuditRuntime {
  readonly auditor: Auditor;
  readonly hub: AuditHub;
  /** Writes what is queued and a shutdown digest. */
  close(): Promise<void>;
}

/**
 * The audit pipeline the configuration asks for: file log (chain, digests signed by `signer`), live hub,
 * metrics. With `audit.enabled: false` requests pass straight through and WatchAuditEvents sees nothing.
 */
export async function startAudit(opts: {
  config: Config["audit"];
  partition: Partition;
  clock: Clock;
  signer: () => AuditSigner | undefined;
  log: Logger;
  metrics: Metrics;
}): Promise<AuditRuntime> {
  const { config, log, metrics } = opts;
  const hub = new AuditHub(config.watchQueueEvents, (n) => metrics.auditWatchDropped.inc(n));
  if (!config.enabled) {
    log.warn("the audit log is disabled (audit.enabled: false): requests leave no audit trail");
    return { auditor: NO_AUDIT, hub, close: async () => undefined };
  }
  await mkdir(dirname(config.file), { recursive: true, mode: 0o750 });
  const signer = opts.signer();
  if (signer) {
    const path = writePublicKeyFile(dirname(config.file), await signer.publicKey());
    log.info({ publicKey: path }, "audit signing key ready");
  } else {
    log.warn("the audit signing key's key store is not connected: digests are not signed until it is");
  }
  let signingFailing = false;
  const file = await FileAuditLog.open({
    file: config.file,
    maxFileBytes: config.maxFileBytes,
    fsync: config.fsync,
    digestEveryEvents: config.digest.everyEvents,
    digestIntervalMs: config.digest.intervalSeconds * 1000,
    maxBacklog: config.maxBacklog,
    signer: opts.signer,
    hooks: {
      written: (events) => {
        metrics.auditEvents.inc(events.length);
        hub.publish(events);
      },
      backlog: (n) => metrics.auditBacklog.set(n),
      writeFailed: (err) => {
        metrics.auditWriteFailures.inc();
        log.error({ err }, "audit log write failed");
      },
      rotateFailed: (err) => {
        metrics.auditRotationFailures.inc();
        log.error({ err }, "audit log rotation failed (its events are written; the file is rotated with a later batch)");
      },
      digest: (outcome, reason, err) => {
        metrics.auditDigests.inc({ outcome });
        // Logged when signing starts failing and when it works again, not on every batch in between.
        if (outcome === "failed" && !signingFailing) log.error({ err, reason }, "audit digest could not be signed (retried at every batch or interval)");
        if (outcome === "written" && signingFailing) log.info({ reason }, "audit digests are signed again");
        signingFailing = outcome === "failed";
      },
      tailChecked: (info) => {
        if (info.outcome === "recovered") log.info(info, "the previous run's unsigned audit records checked out: a recovery digest covers them");
        else if (info.outcome === "refused") log.error(info, "the previous run's unsigned audit records do NOT check out (edited, deleted or inserted records): not signed over; audit verify reports them");
        else log.warn(info, "the previous run's unsigned audit records could not be checked: they stay unsigned");
      },
      recovered: (info) => {
        if (!info.previousRunClean) log.warn(info, "the audit log's previous run did not end with a shutdown digest (crash or truncated tail)");
        if (info.tornBytes > 0) log.warn(info, "removed an unterminated last line from the audit log (a write cut short)");
      },
    },
  });
  log.info({ file: config.file, durability: config.durability, fsync: config.fsync }, "audit log open");
  const auditor = new RequestAuditor({
    partition: opts.partition,
    clock: opts.clock,
    durability: config.durability,
    file,
    hub,
    log,
    failed: () => undefined, // counted by the file log's writeFailed hook, once per batch
  });
  return { auditor, hub, close: () => file.close() };
}
