import { Metadata, type ServerWritableStream, type ServiceError } from "@grpc/grpc-js";
import type { WatchAuditEventsRequest, WatchAuditEventsResponse } from "../../gen/p11kms/v1/kms.js";
import type { AuditedRequest, Auditor } from "../../audit/auditor.js";
import type { AuditScope } from "../../kms/audit-scope.js";
import type { AuditHub } from "../../audit/hub.js";
import { authorizeAccount } from "../../kms/deps.js";
import { toKmsError, validation } from "../../kms/errors.js";
import type { CallerScopedService } from "../../kms/service.js";
import { GRPC_ERROR_TYPE_KEY } from "@p11kms/client/contract";
import { ERROR_TABLE } from "../error-table.js";
import { unidentifiedCaller } from "./caller.js";
import { type GrpcIdentityConfig, grpcCaller } from "./identity.js";

const MAX_FILTER_ENTRIES = 64;

/**
 * WatchAuditEvents: a server stream of audit events as they are written, filtered by event name and key.
 * Opening the stream is itself audited, and allowed to the administrator and the account principals only
 * (the events name every key and caller: account-level access, like reading CloudTrail). A subscriber that reads too slowly loses events (bounded queue in
 * the hub) rather than holding requests up; the next message it gets carries the number it lost.
 */
export function watchAuditEventsHandler(hub: AuditHub, audit: Auditor, service: CallerScopedService, identity: GrpcIdentityConfig) {
  return (call: ServerWritableStream<WatchAuditEventsRequest, WatchAuditEventsResponse>): void => {
    const req = call.request;
    const audited: AuditedRequest = { api: "grpc", caller: unidentifiedCaller(call, identity.mode), operation: "WatchAuditEvents" };
    const subscribe = async (scope: AuditScope | undefined) => {
      if (scope) scope.request = req;
      audited.caller = grpcCaller(call, audited.caller, identity);
      authorizeAccount(service.as(audited.caller).deps, "WatchAuditEvents");
      if (req.eventNames.length > MAX_FILTER_ENTRIES || req.keyIds.length > MAX_FILTER_ENTRIES) {
        throw validation(`EventNames and KeyIds can hold at most ${MAX_FILTER_ENTRIES} entries each.`);
      }
      if ([...req.eventNames, ...req.keyIds].some((s) => s.length === 0 || s.length > 2048)) {
        throw validation("EventNames and KeyIds entries must be 1 to 2048 characters long.");
      }
    };
    audit.around(audited, subscribe).then(
      () => {
        const unsubscribe = hub.subscribe(
          { eventNames: req.eventNames, keyIds: req.keyIds },
          {
            send: (event, lost) =>
              call.write({ eventJson: JSON.stringify(event), eventName: event.eventName, eventTime: new Date(event.eventTime), lostEvents: lost }),
            onDrain: (resume) => call.once("drain", resume),
            end: () => call.end(),
          },
        );
        call.on("cancelled", unsubscribe);
        call.on("close", unsubscribe);
        call.on("error", unsubscribe);
        // Headers now, so a client knows the subscription is live before the first event.
        call.sendMetadata(new Metadata());
      },
      (err: unknown) => {
        const e = toKmsError(err);
        const metadata = new Metadata();
        metadata.set(GRPC_ERROR_TYPE_KEY, e.code);
        call.destroy(Object.assign(new Error(e.message), { code: ERROR_TABLE[e.code].grpc, details: e.message, metadata }) as ServiceError);
      },
    );
  };
}
