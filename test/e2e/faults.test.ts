import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateKeyCommand, DecryptCommand, DescribeCustomKeyStoresCommand, EncryptCommand, ListKeysCommand } from "@aws-sdk/client-kms";
import { credentials, loadPackageDefinition } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProto } from "grpc-health-check";
import { afterAll, describe, expect, it } from "vitest";
import { kmsClient } from "../helpers/aws.js";
import { type DaemonHandle, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken } from "../helpers/softhsm.js";

/**
 * A real device fault under the daemon: its SoftHSM2 token directory disappears while it serves. What an
 * operator sees (AWS DescribeCustomKeyStores, grpc.health.v1, Prometheus, logs), that calls are refused
 * quickly, and that no acknowledged key is lost. Observed SoftHSM2 2.6.1 behaviour (docs/operations.md):
 * once a token's directory has gone, the module never reads it again in that process — not even after it
 * is restored — so the store stays FAILED (reconnect attempts keep failing) until the daemon restarts.
 */
const token = createTestToken("p11kms-faults");
const config = writeConfig(token);
writeFileSync(config, readFileSync(config, "utf8").replace("metrics:\n  enabled: false", "metrics:\n  listen: 127.0.0.1:0"));
let d: DaemonHandle | undefined;
afterAll(async () => {
  await d?.stop();
  token.remove();
});

type HealthClient = { check: (r: object, cb: (e: unknown, r: { status: string }) => void) => void; close(): void };
async function health(endpoint: string, services: string[]): Promise<string[]> {
  const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: unknown) => HealthClient } } };
  };
  const h = new pkg.grpc.health.v1.Health(endpoint, credentials.createInsecure());
  try {
    return await Promise.all(
      services.map((service) => new Promise<string>((ok, ko) => h.check({ service }, (e, r) => (e ? ko(e) : ok(r.status))))),
    );
  } finally {
    h.close();
  }
}

const metricsPort = (h: DaemonHandle) => h.logs.find((l) => l.msg === "p11kms serving")!.metricsPort as number;
const metrics = async (h: DaemonHandle) => (await fetch(`http://127.0.0.1:${metricsPort(h)}/metrics`)).text();
const errName = (p: Promise<unknown>) => p.then(() => "ok", (e: { name?: string }) => e.name);
const SERVICES = ["", "p11kms.v1.KeyManagementService", "p11kms.v1.KeyStore/default"];

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("token directory removed under a running daemon", () => {
  it("goes FAILED visibly, refuses calls quickly, and loses no acknowledged key across the restart", async () => {
    d = await startDaemon({ token, configPath: config });
    const kms = kmsClient(d);
    const keyId = (await kms.send(new CreateKeyCommand({ Description: "acknowledged before the fault" }))).KeyMetadata!.KeyId!;
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("survives") }))).CiphertextBlob!;
    expect(await health(d.endpoint, SERVICES)).toEqual(["SERVING", "SERVING", "SERVING"]);
    expect(await metrics(d)).toContain('p11kms_key_store_state{key_store="default",state="CONNECTED"} 1');

    const tokens = join(token.dir, "tokens");
    renameSync(tokens, `${tokens}.away`);
    try {
      // A key generation fails with CKR_GENERAL_ERROR; the token no longer answers C_GetTokenInfo either,
      // so this is the token's failure, not an internal error, and nothing is half-made.
      expect(await errName(kms.send(new CreateKeyCommand({ Description: "fails mid-way" })))).toBe("KeyUnavailableException");
      const stores = (await kms.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores!;
      expect(stores[0]!.ConnectionState).toBe("FAILED");
      expect(stores[0]!.ConnectionErrorCode).toBe("INTERNAL_ERROR");
      // Refused at once while FAILED, cleanly (the key reads Unavailable).
      const refused = await Promise.all(
        Array.from({ length: 10 }, () => errName(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })))),
      );
      expect(new Set(refused)).toEqual(new Set(["KMSInvalidStateException"]));
      expect(await errName(kms.send(new CreateKeyCommand({})))).toBe("CustomKeyStoreInvalidStateException");
      expect(await health(d.endpoint, SERVICES)).toEqual(["NOT_SERVING", "NOT_SERVING", "NOT_SERVING"]);
      await until("failed reconnect attempts", async () => /p11kms_key_store_reconnect_attempts_total\{key_store="default",outcome="failed"\} [1-9]/.test(await metrics(d!)));
      const text = await metrics(d);
      expect(text).toContain('p11kms_key_store_state{key_store="default",state="FAILED"} 1');
      expect(text).toMatch(/p11kms_hsm_errors_total\{key_store="default",class="token",rv="CKR_GENERAL_ERROR"\} 1/);
      expect(text).toMatch(/p11kms_key_store_faults_total\{key_store="default",code="INTERNAL_ERROR"\} 1/);
      expect(d.logs.some((l) => String(l.msg).startsWith("key store FAILED (device error)") && l.level === 50)).toBe(true);
    } finally {
      renameSync(`${tokens}.away`, tokens);
    }
    expect(await d.stop()).toBe(0);

    d = await startDaemon({ token, configPath: config });
    const again = kmsClient(d);
    expect(Buffer.from((await again.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).toBe("survives");
    const keys = (await again.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId);
    expect(keys).toEqual([keyId]); // the CreateKey that failed left no key behind
    expect(await health(d.endpoint, SERVICES)).toEqual(["SERVING", "SERVING", "SERVING"]);
  });
});

describe("a token missing when the daemon starts", () => {
  it("the daemon starts anyway, NOT_SERVING, with the store FAILED and retried in the background", async () => {
    const missing = createTestToken("p11kms-missing");
    try {
      const path = writeConfig(missing);
      writeFileSync(
        path,
        readFileSync(path, "utf8")
          .replace(`token=${missing.label}?`, "token=not-there-yet?")
          .replace("metrics:\n  enabled: false", "metrics:\n  listen: 127.0.0.1:0"),
      );
      const m = await startDaemon({ token: missing, configPath: path });
      try {
        expect(await health(m.endpoint, SERVICES)).toEqual(["NOT_SERVING", "NOT_SERVING", "NOT_SERVING"]);
        const stores = (await kmsClient(m).send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores!;
        expect(stores[0]).toMatchObject({ ConnectionState: "FAILED", ConnectionErrorCode: "CLUSTER_NOT_FOUND" });
        expect(m.logs.some((l) => l.msg === "key store FAILED at start-up: reconnecting in the background")).toBe(true);
        await until("failed reconnect attempts", async () => /p11kms_key_store_reconnect_attempts_total\{key_store="default",outcome="failed"\} [2-9]/.test(await metrics(m)));
      } finally {
        expect(await m.stop()).toBe(0);
      }
    } finally {
      missing.remove();
    }
  });
});
