import { describe, expect, it } from "vitest";
import { configSchema, isLoopback } from "../../src/config/schema.js";

const URI = "pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PIN";
const STORE = { id: "default", uri: URI };

/** The issues of a failed parse as "path: message" lines. */
function issues(input: unknown): string[] {
  const r = configSchema.safeParse(input);
  if (r.success) throw new Error("expected the configuration to be refused");
  return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("isLoopback", () => {
  it.each([
    ["127.0.0.1:50051", true],
    ["127.1.2.3:1", true],
    ["localhost:50051", true],
    ["[::1]:50051", true],
    ["0.0.0.0:50051", false],
    ["10.0.0.1:50051", false],
    ["[::]:50051", false],
    ["example.com:50051", false],
    ["localhost.example.com:1", false],
    ["127.0.0.1.example.com:1", false],
    ["128.0.0.1:1", false],
  ])("%s -> %s", (hp, expected) => {
    expect(isLoopback(hp)).toBe(expected);
  });
});

describe("configSchema", () => {
  it("fills in every default around a minimal configuration", () => {
    expect(configSchema.parse({ keyStores: [STORE] })).toEqual({
      region: "us-east-1",
      accountId: "111122223333",
      grpc: { listen: "127.0.0.1:50051", insecure: true, maxMessageBytes: 1048576 },
      aws: { enabled: true, listen: "127.0.0.1:4599", insecure: true, accessKeyFiles: [], maxBodyBytes: 262144, requestTimeoutMs: 30000 },
      metrics: { listen: "127.0.0.1:9464", enabled: true },
      storage: { sqlitePath: "p11kms.db", recordCacheMs: 2000 },
      keyStores: [{ id: "default", uri: URI, maxSessions: 8, callTimeoutMs: 10_000, sessionCopies: 1000, rsaOaepSha256Fallback: "auto", importOaepSha256Fallback: "auto", deviceThread: true }],
      moduleEnvironment: {},
      log: { level: "info" },
      shutdown: { drainTimeoutMs: 10000 },
      lifecycle: { checkIntervalSeconds: 60 },
      authorization: { accountPrincipals: [] },
      quotas: { enabled: false, symmetric: 5500, rsa: 500, ecc: 300, operations: {}, burstSeconds: 1 },
      audit: {
        enabled: true,
        file: "audit/audit.jsonl",
        durability: "sync",
        fsync: false,
        maxFileBytes: 104857600,
        digest: { everyEvents: 1000, intervalSeconds: 60 },
        maxBacklog: 100000,
        watchQueueEvents: 1000,
      },
    });
  });

  it("fills in the defaults of a partially given section", () => {
    const c = configSchema.parse({ keyStores: [STORE], grpc: { listen: "[::1]:7000" }, metrics: { enabled: false } });
    expect(c.grpc).toEqual({ listen: "[::1]:7000", insecure: true, maxMessageBytes: 1048576 });
    expect(c.metrics).toEqual({ listen: "127.0.0.1:9464", enabled: false });
  });

  it("requires at least one key store", () => {
    expect(issues({ keyStores: [] })).toEqual(["keyStores: configure at least one key store"]);
    expect(issues({})).toHaveLength(1);
    expect(issues({})[0]).toMatch(/^keyStores: /);
  });

  it("refuses duplicate key store ids", () => {
    expect(issues({ keyStores: [STORE, { ...STORE }] })).toEqual(["keyStores: key store ids must be unique"]);
  });

  it("refuses a defaultKeyStore that names no key store", () => {
    expect(issues({ keyStores: [STORE], defaultKeyStore: "other" })).toEqual(["defaultKeyStore: no key store has id 'other'"]);
    expect(configSchema.parse({ keyStores: [STORE], defaultKeyStore: "default" }).defaultKeyStore).toBe("default");
  });

  it.each(["0.0.0.0:50051", "10.1.2.3:50051", "[::]:50051", "myhost:50051"])("refuses plaintext gRPC on %s", (listen) => {
    expect(issues({ keyStores: [STORE], grpc: { listen } })).toEqual([
      "grpc.listen: plaintext gRPC may only listen on a loopback address",
    ]);
  });

  it("refuses insecure: false without TLS material, and TLS with insecure: true", () => {
    expect(issues({ keyStores: [STORE], grpc: { insecure: false } })).toEqual([
      "grpc.tls: insecure: false needs tls.certFile, tls.keyFile and tls.clientCaFile (mTLS)",
    ]);
    expect(issues({ keyStores: [STORE], grpc: { tls: { certFile: "c", keyFile: "k", clientCaFile: "ca" } } })).toEqual([
      "grpc.insecure: set insecure: false when tls is configured",
    ]);
    // mTLS may listen on any address; the principal source defaults to the URI SAN.
    const ok = configSchema.parse({ keyStores: [STORE], grpc: { insecure: false, listen: "0.0.0.0:50051", tls: { certFile: "c", keyFile: "k", clientCaFile: "ca" } } });
    expect(ok.grpc.tls?.principalFrom).toBe("uri-san");
  });

  it("refuses a listen address that is not host:port", () => {
    // (the loopback check also runs on the malformed value and adds its own line)
    expect(issues({ keyStores: [STORE], grpc: { listen: "127.0.0.1" } })).toContain(
      "grpc.listen: expected host:port, e.g. 127.0.0.1:50051",
    );
    expect(issues({ keyStores: [STORE], metrics: { listen: "http://127.0.0.1:9464" } })).toEqual([
      "metrics.listen: expected host:port, e.g. 127.0.0.1:50051",
    ]);
  });

  it("refuses an invalid PKCS#11 URI with the URI parser's reason", () => {
    expect(issues({ keyStores: [{ id: "a", uri: "pkcs11:token=t?module-path=/m.so&pin-value=1" }] })).toEqual([
      "keyStores.0.uri: invalid PKCS#11 URI: pin-value is not accepted: use pin-source=file:<path> or env:<VAR>",
    ]);
  });

  it.each(["", "has space", "x".repeat(65), "dot.ted"])("refuses key store id %j", (id) => {
    expect(issues({ keyStores: [{ id, uri: URI }] })).toEqual(["keyStores.0.id: 1-64 letters, digits, '_' or '-'"]);
  });

  it("bounds maxSessions to 1..256", () => {
    expect(configSchema.parse({ keyStores: [{ ...STORE, maxSessions: 256 }] }).keyStores[0]!.maxSessions).toBe(256);
    expect(issues({ keyStores: [{ ...STORE, maxSessions: 0 }] })[0]).toMatch(/^keyStores\.0\.maxSessions: /);
    expect(issues({ keyStores: [{ ...STORE, maxSessions: 257 }] })[0]).toMatch(/^keyStores\.0\.maxSessions: /);
    expect(issues({ keyStores: [{ ...STORE, maxSessions: 1.5 }] })[0]).toMatch(/^keyStores\.0\.maxSessions: /);
  });

  it("bounds callTimeoutMs to 100..600000 ms (default 10000)", () => {
    expect(configSchema.parse({ keyStores: [{ ...STORE, callTimeoutMs: 100 }] }).keyStores[0]!.callTimeoutMs).toBe(100);
    expect(issues({ keyStores: [{ ...STORE, callTimeoutMs: 99 }] })[0]).toMatch(/^keyStores\.0\.callTimeoutMs: /);
    expect(issues({ keyStores: [{ ...STORE, callTimeoutMs: 600_001 }] })[0]).toMatch(/^keyStores\.0\.callTimeoutMs: /);
    expect(issues({ keyStores: [{ ...STORE, callTimeoutMs: 0 }] })[0]).toMatch(/^keyStores\.0\.callTimeoutMs: /);
  });

  it("accepts auto/allow/deny for importOaepSha256Fallback (default auto) and nothing else", () => {
    for (const v of ["auto", "allow", "deny"] as const) {
      expect(configSchema.parse({ keyStores: [{ ...STORE, importOaepSha256Fallback: v }] }).keyStores[0]!.importOaepSha256Fallback).toBe(v);
    }
    expect(issues({ keyStores: [{ ...STORE, importOaepSha256Fallback: true }] })[0]).toMatch(/^keyStores\.0\.importOaepSha256Fallback: /);
  });

  it("accepts auto/allow/deny for rsaOaepSha256Fallback and nothing else", () => {
    for (const v of ["auto", "allow", "deny"] as const) {
      expect(configSchema.parse({ keyStores: [{ ...STORE, rsaOaepSha256Fallback: v }] }).keyStores[0]!.rsaOaepSha256Fallback).toBe(v);
    }
    expect(issues({ keyStores: [{ ...STORE, rsaOaepSha256Fallback: "yes" }] })[0]).toMatch(/^keyStores\.0\.rsaOaepSha256Fallback: /);
  });

  it("requires a 12-digit account id given as a string", () => {
    expect(issues({ keyStores: [STORE], accountId: "12345" })).toEqual(["accountId: 12 digits"]);
    expect(issues({ keyStores: [STORE], accountId: 111122223333 })[0]).toMatch(/^accountId: /);
  });

  it("refuses an invalid region and log level", () => {
    expect(issues({ keyStores: [STORE], region: "US_EAST_1" })[0]).toMatch(/^region: /);
    expect(issues({ keyStores: [STORE], log: { level: "verbose" } })[0]).toMatch(/^log\.level: /);
  });

  it("refuses moduleEnvironment names that are not variable names", () => {
    expect(configSchema.parse({ keyStores: [STORE], moduleEnvironment: { SOFTHSM2_CONF: "/x" } }).moduleEnvironment).toEqual({
      SOFTHSM2_CONF: "/x",
    });
    expect(issues({ keyStores: [STORE], moduleEnvironment: { "1BAD": "x" } })[0]).toMatch(/^moduleEnvironment/);
  });

  it("is strict: unknown keys are refused at every level", () => {
    const lines = issues({
      keyStores: [{ ...STORE, pin: "1234" }],
      grpc: { port: 1 },
      metrics: { path: "/m" },
      storage: { sqlite: "x" },
      log: { format: "json" },
      shutdown: { graceMs: 1 },
      extra: true,
    });
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^keyStores\.0: .*"pin"/),
        expect.stringMatching(/^grpc: .*"port"/),
        expect.stringMatching(/^metrics: .*"path"/),
        expect.stringMatching(/^storage: .*"sqlite"/),
        expect.stringMatching(/^log: .*"format"/),
        expect.stringMatching(/^shutdown: .*"graceMs"/),
        expect.stringMatching(/^: .*"extra"/),
      ]),
    );
    expect(lines).toHaveLength(7);
  });
});

describe("configSchema: quotas", () => {
  it("is off by default, with AWS's default rates ready to switch on", () => {
    const q = configSchema.parse({ keyStores: [STORE], quotas: { enabled: true } }).quotas;
    expect(q).toEqual({ enabled: true, symmetric: 5500, rsa: 500, ecc: 300, operations: {}, burstSeconds: 1 });
  });

  it("accepts per-operation quotas for management operations only, and positive rates", () => {
    expect(configSchema.parse({ keyStores: [STORE], quotas: { operations: { CreateKey: 0.5 } } }).quotas.operations).toEqual({ CreateKey: 0.5 });
    expect(issues({ keyStores: [STORE], quotas: { operations: { Encrypt: 10 } } })).toEqual([
      "quotas.operations.Encrypt: cryptographic operations share the symmetric/rsa/ecc quotas",
    ]);
    expect(issues({ keyStores: [STORE], quotas: { symmetric: 0 } })[0]).toMatch(/^quotas\.symmetric: /);
    expect(issues({ keyStores: [STORE], quotas: { burst: 2 } })[0]).toMatch(/^quotas: .*"burst"/);
  });
});
