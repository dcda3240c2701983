import { z } from "zod";
import { isCryptographicOperation } from "../kms/quota-classes.js";
import { parsePkcs11Uri } from "./pkcs11-uri.js";

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "expected host:port, e.g. 127.0.0.1:50051");

const keyStore = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1-64 letters, digits, '_' or '-'"),
    uri: z.string().superRefine((v, ctx) => {
      try {
        parsePkcs11Uri(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: `invalid PKCS#11 URI: ${(err as Error).message}` });
      }
    }),
    maxSessions: z.number().int().min(1).max(256).default(8),
    /**
     * How long an async PKCS#11 call (RSA, P-384/P-521, Ed25519, key pair generation) may run: past it the
     * call answers KeyUnavailableException and the store goes FAILED. Synchronous calls cannot be bounded.
     */
    callTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    /**
     * Keys whose material is also held as an in-memory session copy (faster AES and P-256 signing on
     * SoftHSM2, a few KiB of the module's memory each); least recently used first out; 0 turns copies off.
     */
    sessionCopies: z.number().int().min(0).max(1_000_000).default(1000),
    /**
     * RSAES_OAEP_SHA_256 on a token without OAEP-SHA-256 (SoftHSM2 2.6.1): "auto" allows the fallback (raw
     * RSA on the device, OAEP decoding in the process) only for software tokens; "allow" and "deny" force it.
     */
    rsaOaepSha256Fallback: z.enum(["auto", "allow", "deny"]).default("auto"),
    /**
     * ImportKeyMaterial with RSAES_OAEP_SHA_256 / RSA_AES_KEY_WRAP_SHA_256 on such a token: the same choice
     * for imports, where the software path puts the imported material (or its ephemeral AES key) in the
     * process for a moment. Separate from Decrypt's so that allowing one does not allow the other.
     */
    importOaepSha256Fallback: z.enum(["auto", "allow", "deny"]).default("auto"),
    /**
     * Run this store's AES-GCM calls on the daemon's device thread rather than the event loop: under load
     * the event loop (gRPC, authorization, audit) is the bottleneck; false keeps every call on it.
     */
    deviceThread: z.boolean().default(true),
  })
  .strict();

/** An ARN-like principal string (an ARN, or any URI a client certificate carries). */
const principal = z.string().regex(/^[a-z][a-z0-9+.-]*:\S{1,2040}$/, "an ARN-like principal, e.g. arn:aws:iam::111122223333:user/alice");

const rate = z.number().positive().max(1_000_000);

/**
 * Request quotas per caller (see README "Request quotas"). Off by default: a single-tenant daemon in front
 * of one token is limited by the token; enable them when several callers share it. The defaults are AWS
 * KMS's default quotas, so clients tuned against AWS behave the same here.
 */
const quotas = z
  .object({
    enabled: z.boolean().default(false),
    /** Shared by Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateRandom on symmetric keys. */
    symmetric: rate.default(5500),
    rsa: rate.default(500),
    ecc: rate.default(300),
    /** Per-operation quotas of management operations, overriding the AWS defaults. */
    operations: z
      .record(z.string(), rate)
      .superRefine((ops, ctx) => {
        // Checked here rather than on the key schema so the message names the problem, not "Invalid key".
        for (const op of Object.keys(ops)) {
          if (!/^[A-Z][A-Za-z]{1,63}$/.test(op)) ctx.addIssue({ code: "custom", path: [op], message: "an AWS KMS operation name, e.g. CreateKey" });
          else if (isCryptographicOperation(op)) ctx.addIssue({ code: "custom", path: [op], message: "cryptographic operations share the symmetric/rsa/ecc quotas" });
        }
      })
      .default({}),
    /** Bucket capacity in seconds of rate (1 = a burst of one second's quota after a quiet second). */
    burstSeconds: z.number().min(0.001).max(60).default(1),
  })
  .strict();

/**
 * The audit log (docs/audit.md). On by default: every request of either API becomes one event.
 */
const audit = z
  .object({
    enabled: z.boolean().default(true),
    /** The live JSON Lines file; rotated files sit next to it. Relative to the configuration file. */
    file: z.string().min(1).default("audit/audit.jsonl"),
    /**
     * "sync": a response leaves only once its event is written, and a request whose event cannot be
     * written fails (KMSInternalException). "async": responses do not wait; events still queue in order,
     * but a crash or a broken disk loses the ones not yet written (counted, logged).
     */
    durability: z.enum(["sync", "async"]).default("sync"),
    /** fdatasync each batch before releasing its responses: events then survive power loss, not only a crash of the daemon. */
    fsync: z.boolean().default(false),
    /** The live file is rotated (renamed `<file>.<first seq>`) once it reaches this size. */
    maxFileBytes: z.number().int().min(4096).max(2 ** 40).default(100 * 1024 * 1024),
    digest: z
      .object({
        /** A signed digest after this many events... */
        everyEvents: z.number().int().min(1).max(1_000_000).default(1000),
        /** ...or this many seconds after the first event not yet covered, whichever comes first. */
        intervalSeconds: z.number().min(0.1).max(3600).default(60),
      })
      .strict()
      .default({ everyEvents: 1000, intervalSeconds: 60 }),
    /** Events waiting to be written beyond this are refused (sync) or dropped (async). */
    maxBacklog: z.number().int().min(100).max(10_000_000).default(100_000),
    /** Per WatchAuditEvents subscriber: events queued beyond this are dropped (and the subscriber told). */
    watchQueueEvents: z.number().int().min(1).max(1_000_000).default(1000),
  })
  .strict();

/** The configuration file's schema; every field has a default but the key store. See README "Configuration". */
export const configSchema = z
  .object({
    region: z.string().regex(/^[a-z0-9-]{1,32}$/).default("us-east-1"),
    accountId: z.string().regex(/^\d{12}$/, "12 digits").default("111122223333"),
    grpc: z
      .object({
        listen: hostPort.default("127.0.0.1:50051"),
        /** Plaintext gRPC. Only allowed on loopback addresses; set false and configure `tls` for mTLS. */
        insecure: z.boolean().default(true),
        /** The principal of plaintext (insecure) gRPC callers; default: authorization.administrator. */
        insecurePrincipal: principal.optional(),
        /** mTLS: server certificate, the CA that issues client certificates, and how a principal is read from them. */
        tls: z
          .object({
            certFile: z.string().min(1),
            keyFile: z.string().min(1),
            clientCaFile: z.string().min(1),
            /**
             * "uri-san": the first URI subject alternative name, used verbatim (e.g. an ARN);
             * "subject-cn": the subject CN, as `arn:aws:iam::<accountId>:user/<CN>`.
             */
            principalFrom: z.enum(["uri-san", "subject-cn"]).default("uri-san"),
          })
          .strict()
          .optional(),
        maxMessageBytes: z.number().int().min(16 * 1024).max(64 * 1024 * 1024).default(1024 * 1024),
      })
      .strict()
      .default({ listen: "127.0.0.1:50051", insecure: true, maxMessageBytes: 1024 * 1024 }),
    aws: z
      .object({
        enabled: z.boolean().default(true),
        listen: hostPort.default("127.0.0.1:4599"),
        /** Plain HTTP; only on loopback (request bodies carry plaintext and data keys). */
        insecure: z.boolean().default(true),
        tls: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).strict().optional(),
        /** JSON files `{"accessKeyId", "secretAccessKey", "principal"?}`, mode 0600. */
        accessKeyFiles: z.array(z.string().min(1)).default([]),
        maxBodyBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
        requestTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
      })
      .strict()
      .default({ enabled: true, listen: "127.0.0.1:4599", insecure: true, accessKeyFiles: [], maxBodyBytes: 256 * 1024, requestTimeoutMs: 30_000 }),
    metrics: z
      .object({ listen: hostPort.default("127.0.0.1:9464"), enabled: z.boolean().default(true) })
      .strict()
      .default({ listen: "127.0.0.1:9464", enabled: true }),
    storage: z
      .object({
        sqlitePath: z.string().min(1).default("p11kms.db"),
        /**
         * How long a cached key record or alias may be served (ms). Changes made through this daemon are
         * seen at once; the bound is for changes another replica makes to a shared database. 0: no cache.
         */
        recordCacheMs: z.number().int().min(0).max(3_600_000).default(2000),
      })
      .strict()
      .default({ sqlitePath: "p11kms.db", recordCacheMs: 2000 }),
    keyStores: z.array(keyStore).min(1, "configure at least one key store"),
    defaultKeyStore: z.string().optional(),
    /**
     * Environment variables set before any PKCS#11 module loads (SOFTHSM2_CONF for SoftHSM2,
     * ChrystokiConfigurationPath for Luna, ...). Values are used verbatim.
     */
    moduleEnvironment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    log: z
      .object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info") })
      .strict()
      .default({ level: "info" }),
    shutdown: z
      .object({ drainTimeoutMs: z.number().int().min(0).max(600_000).default(10_000) })
      .strict()
      .default({ drainTimeoutMs: 10_000 }),
    lifecycle: z
      .object({
        /** How often due deletions, rotations and expiries are looked for (they also run once at start). */
        checkIntervalSeconds: z.number().int().min(1).max(3600).default(60),
      })
      .strict()
      .default({ checkIntervalSeconds: 60 }),
    /** Principals (docs/authorization.md). */
    authorization: z
      .object({
        /** The "account root": named in default key policies, allowed account-level operations. Default arn:aws:iam::<accountId>:root. */
        administrator: principal.optional(),
        /** More principals allowed the account-level operations (CreateKey, ListKeys, ListAliases, GenerateRandom, key stores). */
        accountPrincipals: z.array(principal).default([]),
      })
      .strict()
      .default({ accountPrincipals: [] }),
    quotas: quotas.default({ enabled: false, symmetric: 5500, rsa: 500, ecc: 300, operations: {}, burstSeconds: 1 }),
    audit: audit.default({
      enabled: true,
      file: "audit/audit.jsonl",
      durability: "sync",
      fsync: false,
      maxFileBytes: 100 * 1024 * 1024,
      digest: { everyEvents: 1000, intervalSeconds: 60 },
      maxBacklog: 100_000,
      watchQueueEvents: 1000,
    }),
  })
  .strict()
  // Cross-field rules. `when: () => true` runs them even when some field is invalid, so one run reports
  // every problem; they therefore read the input defensively (it may not match the schema's types).
  .superRefine(
    (c, ctx) => {
      const stores = Array.isArray(c.keyStores) ? c.keyStores : [];
      const ids = stores.map((k) => k?.id).filter((id): id is string => typeof id === "string");
      if (new Set(ids).size !== ids.length) ctx.addIssue({ code: "custom", path: ["keyStores"], message: "key store ids must be unique" });
      if (typeof c.defaultKeyStore === "string" && !ids.includes(c.defaultKeyStore)) {
        ctx.addIssue({ code: "custom", path: ["defaultKeyStore"], message: `no key store has id '${c.defaultKeyStore}'` });
      }
      const grpc = c.grpc as Partial<Config["grpc"]> | undefined;
      if (grpc?.insecure === false && !grpc.tls) {
        ctx.addIssue({ code: "custom", path: ["grpc", "tls"], message: "insecure: false needs tls.certFile, tls.keyFile and tls.clientCaFile (mTLS)" });
      }
      if (grpc?.tls && grpc.insecure !== false) {
        ctx.addIssue({ code: "custom", path: ["grpc", "insecure"], message: "set insecure: false when tls is configured" });
      }
      const aws = c.aws as Partial<Config["aws"]> | undefined;
      if (aws?.tls && aws.insecure !== false) {
        ctx.addIssue({ code: "custom", path: ["aws", "insecure"], message: "set insecure: false when tls is configured" });
      }
      if (aws?.insecure === false && !aws.tls) {
        ctx.addIssue({ code: "custom", path: ["aws", "tls"], message: "insecure: false needs tls.certFile and tls.keyFile" });
      }
      const awsListen = aws?.listen ?? "127.0.0.1:4599";
      if (aws?.insecure !== false && hostPort.safeParse(awsListen).success && !isLoopback(awsListen)) {
        ctx.addIssue({ code: "custom", path: ["aws", "listen"], message: "plain HTTP may only listen on a loopback address; configure tls" });
      }
      const listen = grpc?.listen ?? "127.0.0.1:50051";
      if (grpc?.insecure !== false && hostPort.safeParse(listen).success && !isLoopback(listen)) {
        ctx.addIssue({ code: "custom", path: ["grpc", "listen"], message: "plaintext gRPC may only listen on a loopback address" });
      }
    },
    { when: () => true },
  );

export type Config = z.infer<typeof configSchema>;

export function isLoopback(hostPortValue: string): boolean {
  const host = hostPortValue.slice(0, hostPortValue.lastIndexOf(":"));
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
