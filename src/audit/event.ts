import { randomUUID } from "node:crypto";
import type { AuditScope } from "../kms/audit-scope.js";
import type { Caller } from "../kms/caller.js";
import type { Partition } from "../kms/key-ids.js";
import { AUDIT_FIELDS, redact } from "./redact.js";

/**
 * One audit event, modelled on a CloudTrail record of an AWS KMS call (eventVersion 1.11 field names), so
 * tools that read CloudTrail read these. p11kms-specific details sit where CloudTrail puts service
 * specifics: `userIdentity.authMethod`/`api`, and `additionalEventData.backingKeys` (the backing-key
 * version each key used — CloudTrail's keyMaterialId).
 */
export interface AuditEvent {
  eventVersion: "1.11";
  eventTime: string;
  eventSource: "p11kms";
  eventName: string;
  awsRegion: string;
  userIdentity: { type: "p11kms"; principalId: string; authMethod: Caller["authMethod"]; api: Api };
  sourceIPAddress?: string;
  userAgent?: string;
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  errorCode?: string;
  errorMessage?: string;
  additionalEventData?: { backingKeys: { keyArn: string; version: number }[] };
  requestID: string;
  eventID: string;
  readOnly: boolean;
  resources: { accountId: string; type: "AWS::KMS::Key"; ARN: string }[];
  eventType: "AwsApiCall";
  managementEvent: true;
  recipientAccountId: string;
  eventCategory: "Management";
}

/** How the request came in; "internal" for what the daemon does on its own (lifecycle jobs). */
export type Api = "grpc" | "aws" | "internal";

/** Operations that change nothing (CloudTrail's readOnly): everything but these verbs. */
const MUTATING = /^(Create|Update|Delete|Enable|Disable|Schedule|Cancel|Tag|Untag|Rotate|Import|Connect|Disconnect|Put|Retire|Revoke)/;
const MAX_ERROR_MESSAGE = 1024;

export interface Outcome {
  readonly error?: { code: string; message: string } | undefined;
}

/** Builds the event of one finished request from what the service layer recorded in its scope. */
export function buildEvent(
  partition: Partition,
  api: Api,
  caller: Caller,
  operation: string,
  scope: AuditScope,
  outcome: Outcome,
  now: Date,
): AuditEvent {
  const spec = AUDIT_FIELDS[operation];
  const arn = (keyId: string) => `arn:aws:kms:${partition.region}:${partition.accountId}:key/${keyId}`;
  const arns = new Set(scope.keys.map(arn));
  const responseElements = outcome.error ? null : redact(scope.response, spec?.response);
  for (const a of responseArns(responseElements)) arns.add(a);
  const event: AuditEvent = {
    eventVersion: "1.11",
    eventTime: now.toISOString(),
    eventSource: "p11kms",
    eventName: operation,
    awsRegion: partition.region,
    userIdentity: { type: "p11kms", principalId: caller.principal, authMethod: caller.authMethod, api },
    ...(caller.sourceIp ? { sourceIPAddress: caller.sourceIp } : {}),
    ...(caller.userAgent ? { userAgent: caller.userAgent.slice(0, 512) } : {}),
    requestParameters: redact(scope.request, spec?.request),
    responseElements,
    ...(outcome.error ? { errorCode: outcome.error.code, errorMessage: outcome.error.message.slice(0, MAX_ERROR_MESSAGE) } : {}),
    requestID: caller.requestId,
    eventID: randomUUID(),
    readOnly: !MUTATING.test(operation),
    resources: [...arns].map((ARN) => ({ accountId: partition.accountId, type: "AWS::KMS::Key", ARN })),
    eventType: "AwsApiCall",
    managementEvent: true,
    recipientAccountId: partition.accountId,
    eventCategory: "Management",
  };
  if (scope.versions.size > 0) {
    event.additionalEventData = { backingKeys: [...scope.versions].map(([keyId, version]) => ({ keyArn: arn(keyId), version })) };
  }
  return event;
}

/** Key ARNs a response names (keyId/sourceKeyId of cryptographic operations, CreateKey's metadata). */
function responseArns(res: Record<string, unknown> | null): string[] {
  if (!res) return [];
  const meta = res.keyMetadata as Record<string, unknown> | undefined;
  return [res.sourceKeyId, res.keyId, meta?.arn].filter((v): v is string => typeof v === "string" && v.startsWith("arn:"));
}

/** Whether an event concerns a key: by key id, alias-free ARN, or the key id a request named. */
export function eventNamesKey(event: AuditEvent, keyId: string): boolean {
  if (event.resources.some((r) => r.ARN === keyId || r.ARN.endsWith(`:key/${keyId}`))) return true;
  const p = event.requestParameters;
  return !!p && [p.keyId, p.targetKeyId, p.sourceKeyId, p.destinationKeyId].some((v) => v === keyId);
}
