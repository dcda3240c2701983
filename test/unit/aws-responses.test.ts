import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { OPERATIONS } from "../../src/api/aws/operations.js";
import { createGrantResponse, getKeyPolicyResponse, listGrantsResponse, listKeyPoliciesResponse } from "../../src/api/aws/responses/authz.js";
import * as crypto from "../../src/api/aws/responses/crypto.js";
import { getParametersForImportResponse, type KeyMetadataFields, keyMetadataResponse, listKeysResponse } from "../../src/api/aws/responses/keys.js";
import * as lifecycle from "../../src/api/aws/responses/lifecycle.js";
import type { ResponseStyle } from "../../src/api/aws/responses/style.js";
import { kmsHandlers } from "../../src/api/grpc/kms-handlers.js";
import { CLI_STYLE } from "../../src/cli/output.js";
import { KeyManagementServiceService } from "../../src/gen/p11kms/v1/kms.js";
import type { CallerScopedService } from "../../src/kms/service.js";
import type { Logger } from "../../src/observability/logger.js";
import type { Metrics } from "../../src/observability/metrics.js";
import { FIXTURES, type FixtureName, fixtureService } from "../helpers/response-fixtures.js";

/**
 * The AWS facade and the CLI print the same response shapes (src/api/aws/responses/): the facade from the
 * service's results in epoch seconds, the CLI from the gRPC messages in ISO 8601 plus p11kms's extension
 * members. Here the same canned results go down both paths — the facade's operation table, and the gRPC
 * handlers plus the wire encoding the CLI receives — and must come out alike but for those two things.
 */

type Shape = (res: never, style: ResponseStyle) => object;
/** What each CLI command prints from its gRPC response: the shape it calls, and what it hands it. */
const CLI_SHAPES: Record<string, { shape: Shape; input?: (res: never) => unknown }> = {
  CreateKey: { shape: keyMetadataResponse, input: (r: { keyMetadata?: KeyMetadataFields }) => r.keyMetadata },
  DescribeKey: { shape: keyMetadataResponse, input: (r: { keyMetadata?: KeyMetadataFields }) => r.keyMetadata },
  ListKeys: { shape: listKeysResponse },
  Encrypt: { shape: crypto.encryptResponse },
  Decrypt: { shape: crypto.decryptResponse },
  ReEncrypt: { shape: crypto.reEncryptResponse },
  GenerateDataKey: { shape: crypto.generateDataKeyResponse },
  GenerateDataKeyWithoutPlaintext: { shape: crypto.generateDataKeyWithoutPlaintextResponse },
  GenerateRandom: { shape: crypto.generateRandomResponse },
  GetPublicKey: { shape: crypto.getPublicKeyResponse },
  Sign: { shape: crypto.signResponse },
  Verify: { shape: crypto.verifyResponse },
  GenerateMac: { shape: crypto.generateMacResponse },
  VerifyMac: { shape: crypto.verifyMacResponse },
  GenerateDataKeyPair: { shape: crypto.generateDataKeyPairResponse },
  GenerateDataKeyPairWithoutPlaintext: { shape: crypto.generateDataKeyPairWithoutPlaintextResponse },
  ListAliases: { shape: lifecycle.listAliasesResponse },
  ScheduleKeyDeletion: { shape: lifecycle.scheduleKeyDeletionResponse },
  CancelKeyDeletion: { shape: lifecycle.keyIdResponse },
  ListResourceTags: { shape: lifecycle.listResourceTagsResponse },
  GetKeyRotationStatus: { shape: lifecycle.getKeyRotationStatusResponse },
  RotateKeyOnDemand: { shape: lifecycle.keyIdResponse },
  ListKeyRotations: { shape: lifecycle.listKeyRotationsResponse },
  DescribeCustomKeyStores: { shape: lifecycle.describeCustomKeyStoresResponse },
  GetParametersForImport: { shape: getParametersForImportResponse },
  GetKeyPolicy: { shape: getKeyPolicyResponse },
  ListKeyPolicies: { shape: listKeyPoliciesResponse },
  CreateGrant: { shape: createGrantResponse },
  ListGrants: { shape: listGrantsResponse },
  ListRetirableGrants: { shape: listGrantsResponse },
};

/** Members only the CLI shows (docs/asymmetric-keys.md, docs/key-lifecycle.md). */
const EXTENSIONS = new Set(["P11kmsRsaOaepSha256Decryption", "ConnectionErrorReason"]);
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The CLI's output as the facade would send it: ISO dates back to epoch seconds, extensions dropped. */
function asOnTheWire(v: unknown): unknown {
  if (typeof v === "string" && ISO.test(v)) return Date.parse(v) / 1000;
  if (Array.isArray(v)) return v.map(asOnTheWire);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !EXTENSIONS.has(k)).map(([k, x]) => [k, asOnTheWire(x)]));
}

const methods = Object.values(KeyManagementServiceService);
const methodKeys = Object.fromEntries(Object.entries(KeyManagementServiceService).map(([key, m]) => [m.path.split("/").pop()!, key]));
const noop = () => {};
const metrics = { latency: { labels: () => ({ observe: noop }) }, requests: { labels: () => ({ inc: noop }), inc: noop } } as unknown as Metrics;
const log = { error: noop, debug: noop } as unknown as Logger;

/** The response the CLI decodes for `op`: the real gRPC handler over the fixtures, through the wire encoding. */
async function overGrpc(name: FixtureName, op: string): Promise<unknown> {
  const service = fixtureService(FIXTURES[name]) as CallerScopedService;
  const handlers = kmsHandlers(service, { mode: "insecure", principal: "arn:aws:iam::111122223333:root" }, log, metrics) as unknown as Record<string, (call: unknown, callback: (err: unknown, res: unknown) => void) => void>;
  const method = methods.find((m) => m.path.endsWith(`/${op}`))!;
  const call = { request: method.requestDeserialize(Buffer.alloc(0)), metadata: new Metadata(), getPeer: () => "ipv4:127.0.0.1:5000", getAuthContext: () => ({}) };
  const res = await new Promise((resolve, reject) => handlers[methodKeys[op]!]!(call, (err: unknown, r: unknown) => (err ? reject(err) : resolve(r))));
  return method.responseDeserialize(method.responseSerialize(res as never));
}

const withBody = Object.keys(CLI_SHAPES);

describe("AWS response shapes: the facade and the CLI print the same", () => {
  it("every facade operation that answers with a body is in this table (and only those)", async () => {
    const service = fixtureService(FIXTURES.full);
    const bodies = await Promise.all(Object.entries(OPERATIONS).map(async ([op, o]) => [op, await o.run(service, {} as never)] as const));
    expect(bodies.filter(([, b]) => Object.keys(b).length > 0).map(([op]) => op).sort()).toEqual([...withBody].sort());
  });

  describe.each(["full", "sparse"] as const)("%s results", (name) => {
    it.each(withBody)("%s: same members, order and values; dates the only difference", async (op) => {
      const wire = await OPERATIONS[op]!.run(fixtureService(FIXTURES[name]), {} as never);
      const { shape, input } = CLI_SHAPES[op]!;
      const proto = (await overGrpc(name, op)) as never;
      const cli = shape((input ? input(proto) : proto) as never, CLI_STYLE);
      expect(JSON.stringify(asOnTheWire(cli))).toBe(JSON.stringify(wire));
      // The facade speaks AWS only; dates on the wire are numbers, in the CLI ISO strings.
      expect(JSON.stringify(wire)).not.toMatch(/P11kms|ConnectionErrorReason|"\d{4}-\d\d-\d\dT/);
    });
  });

  it("the CLI adds the extension members and prints ISO dates", async () => {
    const described = keyMetadataResponse(((await overGrpc("full", "DescribeKey")) as { keyMetadata: KeyMetadataFields }).keyMetadata, CLI_STYLE);
    expect(described.KeyMetadata).toMatchObject({ CreationDate: "2024-03-05T06:07:08.123Z", ValidTo: "2025-11-30T23:59:59.500Z", P11kmsRsaOaepSha256Decryption: "fallback" });
    const stores = lifecycle.describeCustomKeyStoresResponse((await overGrpc("full", "DescribeCustomKeyStores")) as never, CLI_STYLE);
    expect(stores.CustomKeyStores[0]).toMatchObject({ ConnectionErrorCode: "USER_LOCKED_OUT", ConnectionErrorReason: "CKR_PIN_LOCKED" });
  });

  it("the CLI commands call these shapes and build no AWS response member themselves", async () => {
    const dir = join(import.meta.dirname, "../../src/cli");
    const source = readdirSync(dir)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("\n");
    for (const { shape } of Object.values(CLI_SHAPES)) expect(source).toContain(`${shape.name}(`);
    const members = new Set<string>();
    const collect = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(collect);
      else if (typeof v === "object" && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          members.add(k);
          collect(x);
        }
      }
    };
    for (const op of withBody) collect(await OPERATIONS[op]!.run(fixtureService(FIXTURES.full), {} as never));
    const written = [...members].filter((m) => /^[A-Z]/.test(m) && new RegExp(`\\b${m}:`).test(source));
    expect(written).toEqual([]);
  });
});
