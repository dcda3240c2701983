import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { GenerateRandomCommand } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import { CreateKeyRequest, GenerateRandomRequest, type KeyManagementServiceClient } from "../../src/gen/p11kms/v1/kms.js";
import { kmsClient } from "../helpers/aws.js";
import { client, type DaemonHandle, rpc, rpcError, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken } from "../helpers/softhsm.js";

// Tiny quotas: 3 symmetric requests at once, then one every 2 s; CreateKey 2 at once. Slow refill keeps the
// test deterministic on a loaded machine (a 4th call within 2 s of the 3rd is always over quota).
const QUOTAS = `quotas:
  enabled: true
  symmetric: 0.5
  burstSeconds: 6
  operations:
    CreateKey: 0.5
authorization:
  accountPrincipals: ["arn:aws:iam::111122223333:user/grpc", "arn:aws:iam::111122223333:user/second"]
`;

let d: DaemonHandle;
let c: KeyManagementServiceClient;
let second: { accessKeyId: string; secretAccessKey: string };

beforeAll(async () => {
  const token = createTestToken("p11kms-quota");
  const path = writeConfig(token, QUOTAS);
  createAccessKeyFile(join(token.dir, "second-key.json"), "arn:aws:iam::111122223333:user/second");
  second = JSON.parse(readFileSync(join(token.dir, "second-key.json"), "utf8")) as typeof second;
  const text = readFileSync(path, "utf8")
    .replace("accessKeyFiles: [access-key.json]", "accessKeyFiles: [access-key.json, second-key.json]")
    .replace("metrics:\n  enabled: false", "metrics:\n  listen: 127.0.0.1:0");
  // gRPC callers get a principal of their own here, so their buckets are apart from the AWS access keys'.
  writeFileSync(path, text.replace("grpc:\n  listen: 127.0.0.1:0", "grpc:\n  listen: 127.0.0.1:0\n  insecurePrincipal: arn:aws:iam::111122223333:user/grpc"));
  d = await startDaemon({ token, configPath: path });
  c = client(d.endpoint);
});
afterAll(async () => {
  c?.close();
  await d?.stop();
  d?.token.remove();
});

const random = GenerateRandomRequest.fromPartial({ numberOfBytes: 8 });

describe("request quotas", () => {
  it("throttles gRPC callers over quota with RESOURCE_EXHAUSTED and ThrottlingException", async () => {
    for (let i = 0; i < 3; i++) await rpc(c, c.generateRandom, random);
    const err = await rpcError(c, c.generateRandom, random);
    expect(err).toMatchObject({ code: status.RESOURCE_EXHAUSTED, type: "ThrottlingException" });
    expect(err.details).toMatch(/symmetric cryptographic operations/);
  });

  it("counts management operations against their own quota", async () => {
    // The symmetric bucket is empty now; CreateKey is unaffected, and then has its own limit.
    await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}));
    await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}));
    await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}));
    expect(await rpcError(c, c.createKey, CreateKeyRequest.fromPartial({}))).toMatchObject({ type: "ThrottlingException" });
  });

  it("throttles each SigV4 principal separately on the AWS facade (HTTP 400 ThrottlingException)", async () => {
    const first = kmsClient(d);
    const other = kmsClient(d, second);
    try {
      for (let i = 0; i < 3; i++) await first.send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
      const err = await first.send(new GenerateRandomCommand({ NumberOfBytes: 8 })).then(
        () => undefined,
        (e: { name: string; $metadata: { httpStatusCode?: number } }) => e,
      );
      expect(err?.name).toBe("ThrottlingException");
      expect(err?.$metadata.httpStatusCode).toBe(400);
      // Another principal has its own bucket, and the gRPC callers' principal is separate from both.
      const res = await other.send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
      expect(res.Plaintext?.length).toBe(8);
    } finally {
      first.destroy();
      other.destroy();
    }
  });

  it("reports throttling and the limits as Prometheus metrics", async () => {
    const serving = d.logs.find((l) => l.msg === "p11kms serving")!;
    const text = await (await fetch(`http://127.0.0.1:${serving.metricsPort as number}/metrics`)).text();
    expect(text).toMatch(/p11kms_quota_throttled_total\{api="grpc",class="symmetric"\} [1-9]/);
    expect(text).toMatch(/p11kms_quota_throttled_total\{api="aws",class="symmetric"\} [1-9]/);
    expect(text).toMatch(/p11kms_quota_throttled_total\{api="grpc",class="operation:CreateKey"\} [1-9]/);
    expect(text).toContain('p11kms_quota_limit_per_second{class="symmetric"} 0.5');
    expect(text).toContain('p11kms_quota_limit_per_second{class="operation:DescribeKey"} 2000');
  });
});
