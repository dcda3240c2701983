import { Metadata, type ServerWritableStream, type ServiceError } from "@grpc/grpc-js";
import type { WatchAuditEventsRequest, WatchAuditEventsResponse } from "../../gen/p11kms/v1/kms.js";
import type { Auditor } from "../../audit/auditor.js";
import type { AuditHub } from "../../audit/hub.js";
import { auditScope } from "../../kms/audit-scope.js";
import { toKmsError, validation } from "../../kms/errors.js";
import { ERROR_TABLE, GRPC_ERROR_TYPE_KEY } from "../error-table.js";
import { grpcCaller } from "./caller.js";

const MAX_FILTER_ENTRIES = 64;

/**
 * WatchAuditEvents: a server stream of audit events as they are written, filtered by event name and key.
 * Opening the stream is itself audited. A subscriber that reads too slowly loses events (bounded queue in
 * the hub) rather than holding requests up; the next message it gets carries the number it lost.
 */
export function watchAuditEventsHandler(hub: AuditHub, audit: Auditor) {
  return (call: ServerWritableStream<WatchAuditEventsRequest, WatchAuditEventsResponse>): void => {
    const req = call.request;
    const subscribe = async () => {
      const scope = auditScope.getStore();
      if (scope) scope.request = req;
      if (req.eventNames.length > MAX_FILTER_ENTRIES || req.keyIds.length > MAX_FILTER_ENTRIES) {
        throw validation(`EventNames and KeyIds can hold at most ${MAX_FILTER_ENTRIES} entries each.`);
      }
      if ([...req.eventNames, ...req.keyIds].some((s) => s.length === 0 || s.length > 2048)) {
        throw validation("EventNames and KeyIds entries must be 1 to 2048 characters long.");
      }
    };
    audit.around({ api: "grpc", caller: grpcCaller(call), operation: "WatchAuditEvents" }, subscribe).then(
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
