import { withInternalAudit } from "../audit/internal-events.js";
import { type AuditRuntime, startAudit } from "../audit/setup.js";
import { INTERNAL_CALLER } from "../kms/caller.js";
import type { ServiceDeps } from "../kms/deps.js";
import { LifecycleJobs } from "../kms/lifecycle-jobs.js";
import { KmsService } from "../kms/service.js";
import { lifecycleEvents } from "../observability/lifecycle-events.js";
import type { DaemonContext } from "./context.js";
import type { Opened } from "./shutdown.js";
import { auditSignerOf, type DaemonStores } from "./stores.js";

/** What the listeners serve. */
export interface BuiltService {
  /** The root service: it acts as the daemon itself; facades get it as a CallerScopedService and bind each call's caller. */
  readonly service: KmsService;
  readonly audit: AuditRuntime;
  /** The account's administrator principal (default: the account root). */
  readonly administrator: string;
}

/**
 * Start-up stage 2: the KMS service, the audit log, and the lifecycle jobs, whose due ones have run when this
 * returns. Records the audit log and the jobs in `opened` as soon as each exists (a later failure closes them).
 */
export async function buildService(ctx: DaemonContext, { metadata, keyStores, connections }: DaemonStores, opened: Opened): Promise<BuiltService> {
  const { config, log, metrics, clock } = ctx;
  const administrator = config.authorization.administrator ?? `arn:aws:iam::${config.accountId}:root`;
  log.info({ administrator, accountPrincipals: config.authorization.accountPrincipals }, "authorization: administrator principal");
  const deps: ServiceDeps = {
    metadata,
    keyStores,
    defaultKeyStoreId: config.defaultKeyStore ?? config.keyStores[0]!.id,
    clock,
    partition: { region: config.region, accountId: config.accountId },
    // Lifecycle jobs' actions are audited too; `opened.audit` is set just below, before any job runs.
    events: withInternalAudit(lifecycleEvents(log, metrics), () => opened.audit?.auditor, log),
    connections,
    access: { administrator, accountPrincipals: config.authorization.accountPrincipals },
  };
  const service = new KmsService(deps, INTERNAL_CALLER);
  // WARNING: the audit log starts before the first lifecycle job runs (runDueJobs): the jobs' deletions and
  // rotations are audit events, and an event reported before the audit log exists would be lost.
  const audit = (opened.audit = await startAudit({
    config: config.audit,
    partition: deps.partition,
    clock,
    signer: auditSignerOf(keyStores, deps.defaultKeyStoreId),
    log,
    metrics,
  }));
  await runDueJobs(deps, ctx, opened);
  return { service, audit, administrator };
}

/** Runs the lifecycle jobs that are due now (deletions, rotations, expiries), then schedules them. */
async function runDueJobs(deps: ServiceDeps, { config, log }: DaemonContext, opened: Opened): Promise<void> {
  // WARNING: deadlines that passed while the daemon was down are handled before the first call is served.
  const jobs = (opened.jobs = new LifecycleJobs(deps));
  const due = await jobs.tick();
  log.info({ deleted: due.deleted.length, rotated: due.rotated.length, deferred: due.deferred.length }, "due key lifecycle jobs run");
  jobs.start(config.lifecycle.checkIntervalSeconds * 1000);
}
