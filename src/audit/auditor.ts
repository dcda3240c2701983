import { type AuditScope, newAuditScope } from "../kms/audit-scope.js";
import type { Caller } from "../kms/caller.js";
import { KmsError } from "../kms/errors.js";
import type { Partition } from "../kms/key-ids.js";
import type { Clock } from "../kms/ports.js";
import type { CallerScopedService } from "../kms/service.js";
import type { Logger } from "../observability/logger.js";
import { type Api, type AuditEvent, buildEvent } from "./event.js";
import type { FileAuditLog } from "./file-log.js";
import type { AuditHub } from "./hub.js";

/** One request as a facade hands it to the auditor; `operation` may be filled in while it is handled. */
export interface AuditedRequest {
  readonly api: Api;
  /** Replaced by the identified caller once the facade knows it. */
  caller: Caller;
  operation: string;
}

export type Durability = "sync" | "async";

/**
 * Turns every request into one audit event — successes and failures alike, whatever layer refused it
 * (authentication, decoding, quotas, the service) — and, with `sync` durability, holds the response until
 * the event is written: if it cannot be, the request fails with KMSInternalException (fail closed).
 */
export interface Auditor {
  /** Runs `fn` with the request's audit scope (undefined when nothing is audited) and records its event. */
  around<T>(req: AuditedRequest, fn: (scope: AuditScope | undefined) => Promise<T>): Promise<T>;
}

/** Auditing off: requests pass straight through. */
export const NO_AUDIT: Auditor = { around: (_req, fn) => fn(undefined) };

export class RequestAuditor implements Auditor {
  constructor(
    private readonly opts: {
      readonly partition: Partition;
      readonly clock: Clock;
      readonly durability: Durability;
      /** Undefined when events go only to live subscribers. */
      readonly file: FileAuditLog | undefined;
      readonly hub: AuditHub;
      readonly log: Logger;
      readonly failed: (err: unknown) => void;
    },
  ) {}

  async around<T>(req: AuditedRequest, fn: (scope: AuditScope | undefined) => Promise<T>): Promise<T> {
    const scope = newAuditScope();
    let result: T | undefined;
    let error: unknown;
    let failed = false;
    try {
      result = await fn(scope);
    } catch (err) {
      failed = true;
      error = err;
    }
    const event = buildEvent(this.opts.partition, req.api, req.caller, req.operation, scope, failed ? { error: describe(error) } : {}, this.opts.clock.now());
    await this.record(event);
    if (failed) throw error;
    return result as T;
  }

  private async record(event: AuditEvent): Promise<void> {
    const file = this.opts.file;
    if (!file) {
      this.opts.hub.publish([event]);
      return;
    }
    const written = file.append(event);
    if (this.opts.durability === "async") {
      written.catch((err: unknown) => this.lost(event, err));
      return;
    }
    try {
      await written;
    } catch (err) {
      this.lost(event, err);
      throw new KmsError("KMSInternalException", "The request could not be recorded in the audit log, so it was not acknowledged.", { cause: err });
    }
  }

  // The failed batch is logged and counted once by the file log; per event only at debug level, so a broken
  // disk under load does not also flood the log.
  private lost(event: AuditEvent, err: unknown): void {
    this.opts.failed(err);
    this.opts.log.debug({ err, requestId: event.requestID, eventName: event.eventName }, "audit event could not be written");
  }
}

/** The error code and message an event reports: the KMS exception name, or the facade's protocol error. */
function describe(err: unknown): { code: string; message: string } {
  if (err instanceof KmsError) {
    return err.code === "KMSInternalException" ? { code: err.code, message: "The request failed due to an internal error." } : { code: err.code, message: err.message };
  }
  const e = err as { type?: unknown; message?: unknown } | undefined;
  if (e && typeof e.type === "string" && typeof e.message === "string") return { code: e.type, message: e.message };
  return { code: "KMSInternalException", message: "The request failed due to an internal error." };
}

/**
 * The service as the facades see it when auditing: the first service call made while serving a request is
 * that request's operation, and its domain request and response go into the request's audit scope (the
 * event is built from those, never from wire formats, so both APIs produce the same event). Internal
 * callers (quota key-spec lookups, lifecycle jobs) use the bare service and record nothing.
 */
export function auditedService(service: CallerScopedService): CallerScopedService {
  return {
    // A proxy per audited request: only the one method the facade calls gets wrapped.
    as: (caller, scope) => {
      const bound = service.as(caller, scope);
      if (!scope) return bound;
      return new Proxy(bound, {
        get(target, prop, receiver) {
          const value: unknown = Reflect.get(target, prop, receiver);
          if (typeof value !== "function" || prop === "as") return value;
          // Operations are prototype methods (no per-request closures): bind the one the facade calls.
          return recording((value as (...args: unknown[]) => Promise<unknown>).bind(target), scope);
        },
      });
    },
  };
}

function recording(call: (...args: unknown[]) => Promise<unknown>, scope: AuditScope): (...args: unknown[]) => Promise<unknown> {
  // Every argument is passed on; the first is the domain request.
  return async (...args: unknown[]) => {
    if (scope.request !== undefined) return call(...args);
    scope.request = args[0];
    const res = await call(...args);
    scope.response = res;
    return res;
  };
}
