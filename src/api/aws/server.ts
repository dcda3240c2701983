import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type Auditor, type AuditedRequest, NO_AUDIT } from "../../audit/auditor.js";
import { KmsError, toKmsError } from "../../kms/errors.js";
import type { Caller } from "../../kms/caller.js";
import type { CallerScopedService } from "../../kms/service.js";
import type { Logger } from "../../observability/logger.js";
import type { Metrics } from "../../observability/metrics.js";
import { ERROR_TABLE } from "../error-table.js";
import { type QuotaGate, quotaKeyId } from "../quota-gate.js";
import { decode } from "./json-codec.js";
import { OPERATIONS } from "./operations.js";
import { AwsProtocolError } from "./protocol-errors.js";
import type { SigV4Verifier } from "./sigv4.js";

const CONTENT_TYPE = "application/x-amz-json-1.1";
const TARGET_PREFIX = "TrentService.";

export interface AwsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly verifier: SigV4Verifier;
  readonly service: CallerScopedService;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Request quotas per SigV4 principal; undefined when disabled. */
  readonly quotas?: QuotaGate | undefined;
  /** One audit event per request (default: none). */
  readonly audit?: Auditor | undefined;
}

/**
 * The AWS-KMS-compatible endpoint (AWS JSON 1.1): `POST /` with `X-Amz-Target: TrentService.<Operation>`,
 * SigV4-signed. Decodes, authenticates, calls the service, encodes — errors become `{"__type","message"}`
 * with the status from the shared error table. Every response carries `x-amzn-RequestId`.
 */
export async function startAwsServer(opts: AwsServerOptions): Promise<{ server: Server; port: number }> {
  const handler = (req: IncomingMessage, res: ServerResponse) => void handle(opts, req, res);
  const server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, handler)
    : createHttpServer(handler);
  // Bounded time for a whole request and for its headers: a slow or stalled client cannot hold a socket.
  server.requestTimeout = opts.requestTimeoutMs;
  server.headersTimeout = Math.min(opts.requestTimeoutMs, 10_000);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : opts.port };
}

async function handle(opts: AwsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const requestId = randomUUID();
  res.setHeader("x-amzn-RequestId", requestId);
  let operation = "-";
  const end = opts.metrics.latency.startTimer({ api: "aws" });
  // One audit event per request, refusals included; the answer leaves once the auditor lets it (sync durability).
  const audited: AuditedRequest = { api: "aws", caller: awsCaller(req, requestId), operation: "UnknownOperation" };
  try {
    const result = await (opts.audit ?? NO_AUDIT).around(audited, async (scope) => {
      const target = req.headers["x-amz-target"];
      const name = typeof target === "string" && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : "";
      const op = Object.hasOwn(OPERATIONS, name) ? OPERATIONS[name] : undefined;
      if (op) audited.operation = name;
      if (req.url !== "/") throw new AwsProtocolError("UnknownOperationException", `No such resource: ${req.url ?? ""}. The API is POST /.`, 404);
      if (req.method !== "POST") {
        res.setHeader("Allow", "POST");
        throw new AwsProtocolError("UnknownOperationException", `Method ${req.method} is not allowed; the API is POST /.`, 405);
      }
      const body = await readBody(req, opts.maxBodyBytes);
      const key = await opts.verifier.verify({ method: "POST", path: "/", headers: req.headers, body });
      audited.caller.principal = key.principal;

      if (!op) throw new AwsProtocolError("UnknownOperationException", `Unknown operation ${String(target ?? "(no X-Amz-Target)")}.`);
      operation = name;
      if (!String(req.headers["content-type"] ?? "").startsWith(CONTENT_TYPE)) {
        throw new AwsProtocolError("SerializationException", `Content-Type must be ${CONTENT_TYPE}.`);
      }
      const request = decode(op.schema, parseJson(body));
      // The caller the event names is the one the service is bound to (authorization, quotas).
      const caller = audited.caller;
      await opts.quotas?.admit("aws", caller.principal, operation, quotaKeyId(request));
      return op.run(opts.service.as(caller, scope), request as never);
    });
    send(res, 200, result);
    opts.metrics.requests.inc({ api: "aws", operation, outcome: "OK" });
    opts.log.debug({ requestId, operation, principal: audited.caller.principal }, "aws request");
  } catch (err) {
    const { type, status, message } = describe(err);
    if (status >= 500) opts.log.error({ err, requestId, operation }, "request failed");
    else opts.log.debug({ requestId, operation, type }, "request rejected");
    opts.metrics.requests.inc({ api: "aws", operation, outcome: type });
    send(res, status, { __type: type, message });
  } finally {
    end({ operation });
  }
}

/** The caller before authentication: the principal is filled in once the signature checks out. */
function awsCaller(req: IncomingMessage, requestId: string): Caller {
  const ua = req.headers["user-agent"];
  return {
    principal: "unauthenticated",
    authMethod: "sigv4",
    ...(req.socket.remoteAddress ? { sourceIp: req.socket.remoteAddress.replace(/^::ffff:/, "") } : {}),
    ...(ua ? { userAgent: ua } : {}),
    requestId,
  };
}

function describe(err: unknown): { type: string; status: number; message: string } {
  if (err instanceof AwsProtocolError) return { type: err.type, status: err.status, message: err.message };
  const e = err instanceof KmsError ? err : toKmsError(err);
  return { type: e.code, status: ERROR_TABLE[e.code].http, message: e.message };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": CONTENT_TYPE, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString("utf8"));
  } catch {
    throw new AwsProtocolError("SerializationException", "The request body is not valid JSON.");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new AwsProtocolError("SerializationException", "The request body must be a JSON object.");
  }
  return v;
}

/** Reads the body, refusing more than `max` bytes without buffering them. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > max) {
    req.resume();
    return Promise.reject(new AwsProtocolError("RequestEntityTooLargeException", `The request body exceeds ${max} bytes.`, 413));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.resume();
        reject(new AwsProtocolError("RequestEntityTooLargeException", `The request body exceeds ${max} bytes.`, 413));
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
