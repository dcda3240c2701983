import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, status } from "@grpc/grpc-js";
import { CreateGrantCommand, CreateKeyCommand, DecryptCommand, EncryptCommand, GetKeyPolicyCommand, ListGrantsCommand, PutKeyPolicyCommand, RetireGrantCommand } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import { CreateKeyRequest, DescribeKeyRequest, KeyManagementServiceClient } from "../../src/gen/p11kms/v1/kms.js";
import { kmsClient } from "../helpers/aws.js";
import { createTestPki, type TestPki } from "../helpers/certs.js";
import { ADMIN_PRINCIPAL, CLI, client, type DaemonHandle, rpc, rpcError, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken } from "../helpers/softhsm.js";

const ALICE = "arn:aws:iam::111122223333:user/alice";

describe("AWS facade and plaintext gRPC: denied calls", () => {
  let d: DaemonHandle;
  let alice: { accessKeyId: string; secretAccessKey: string };
  beforeAll(async () => {
    const token = createTestToken("p11kms-authz");
    const path = writeConfig(token);
    createAccessKeyFile(join(token.dir, "alice-key.json"), ALICE);
    alice = JSON.parse(readFileSync(join(token.dir, "alice-key.json"), "utf8")) as typeof alice;
    const text = readFileSync(path, "utf8").replace("accessKeyFiles: [access-key.json]", "accessKeyFiles: [access-key.json, alice-key.json]");
    writeFileSync(path, text);
    d = await startDaemon({ token, configPath: path });
  });
  afterAll(async () => {
    await d?.stop();
    d?.token.remove();
  });

  it("a denied AWS SDK call gets AccessDeniedException (HTTP 400); a policy or a grant then allows it", async () => {
    const admin = kmsClient(d);
    const user = kmsClient(d, alice);
    try {
      const keyId = (await admin.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const denied = await user.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })).catch((e: { name: string; message: string; $metadata: { httpStatusCode?: number } }) => e);
      expect(denied).toMatchObject({ name: "AccessDeniedException", $metadata: { httpStatusCode: 400 } });
      expect((denied as { message: string }).message).toContain(`User: ${ALICE} is not authorized to perform: kms:Encrypt`);
      expect(await user.send(new CreateKeyCommand({})).catch((e: { name: string }) => e.name)).toBe("AccessDeniedException");

      // A grant: effective at once, its token accepted.
      const g = await admin.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: ALICE, Operations: ["Encrypt", "Decrypt"], Constraints: { EncryptionContextSubset: { app: "web" } } }));
      const blob = (await user.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x"), EncryptionContext: { app: "web" }, GrantTokens: [g.GrantToken!] }))).CiphertextBlob!;
      expect(Buffer.from((await user.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { app: "web" } }))).Plaintext!).toString()).toBe("x");
      expect(await user.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") })).catch((e: { name: string }) => e.name)).toBe("AccessDeniedException");
      const listed = await admin.send(new ListGrantsCommand({ KeyId: keyId }));
      expect(listed.Grants).toEqual([expect.objectContaining({ GrantId: g.GrantId, GranteePrincipal: ALICE, Operations: ["Encrypt", "Decrypt"], Constraints: { EncryptionContextSubset: { app: "web" } } })]);
      await admin.send(new RetireGrantCommand({ KeyId: keyId, GrantId: g.GrantId }));

      // A key policy: PutKeyPolicy, GetKeyPolicy round trip.
      const policy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: ADMIN_PRINCIPAL }, Action: "kms:*", Resource: "*" },
          { Effect: "Allow", Principal: { AWS: ALICE }, Action: "kms:Encrypt", Resource: "*" },
        ],
      });
      await admin.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: policy }));
      expect((await admin.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: "default" }))).Policy).toBe(policy);
      expect((await user.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x") }))).KeyId).toContain(keyId);
      const malformed = await admin.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: "{" })).catch((e: { name: string }) => e.name);
      expect(malformed).toBe("MalformedPolicyDocumentException");
    } finally {
      admin.destroy();
      user.destroy();
    }
  });

  it("the CLI manages policies and grants with the AWS CLI's commands and output shapes", async () => {
    const cli = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [CLI, "--endpoint", d.endpoint, ...args], { encoding: "utf8" }) || "null") as Record<string, unknown>;
    const keyId = (cli("create-key") as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
    const file = join(d.token.dir, "policy.json");
    const doc = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { AWS: ADMIN_PRINCIPAL }, Action: "kms:*", Resource: "*" }, { Effect: "Allow", Principal: { AWS: ALICE }, Action: "kms:DescribeKey", Resource: "*" }] };
    writeFileSync(file, JSON.stringify(doc));
    expect(cli("put-key-policy", "--key-id", keyId, "--policy-name", "default", "--policy", `file://${file}`)).toBeNull();
    expect(JSON.parse(cli("get-key-policy", "--key-id", keyId, "--policy-name", "default").Policy as string)).toEqual(doc);
    expect(cli("list-key-policies", "--key-id", keyId)).toEqual({ PolicyNames: ["default"], Truncated: false });
    const g = cli("create-grant", "--key-id", keyId, "--grantee-principal", ALICE, "--retiring-principal", ADMIN_PRINCIPAL, "--operations", "Encrypt", "Decrypt", "--constraints", '{"EncryptionContextEquals":{"a":"b"}}', "--name", "cli-grant");
    expect(g).toEqual({ GrantToken: expect.any(String), GrantId: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(cli("list-grants", "--key-id", keyId)).toEqual({
      Grants: [expect.objectContaining({ GrantId: g.GrantId, Name: "cli-grant", GranteePrincipal: ALICE, Operations: ["Encrypt", "Decrypt"], Constraints: { EncryptionContextEquals: { a: "b" } } })],
      Truncated: false,
    });
    expect((cli("list-retirable-grants", "--retiring-principal", ADMIN_PRINCIPAL).Grants as unknown[]).length).toBeGreaterThan(0);
    expect(cli("retire-grant", "--grant-token", g.GrantToken as string)).toBeNull();
    const g2 = cli("create-grant", "--key-id", keyId, "--grantee-principal", ALICE, "--operations", "DescribeKey");
    expect(cli("revoke-grant", "--key-id", keyId, "--grant-id", g2.GrantId as string)).toBeNull();
    expect(cli("list-grants", "--key-id", keyId)).toEqual({ Grants: [], Truncated: false });
  });
});

describe("gRPC: plaintext caller that is not the administrator", () => {
  let d: DaemonHandle;
  let c: KeyManagementServiceClient;
  beforeAll(async () => {
    const token = createTestToken("p11kms-authz-grpc");
    const path = writeConfig(token);
    writeFileSync(path, readFileSync(path, "utf8").replace("grpc:\n  listen: 127.0.0.1:0", `grpc:\n  listen: 127.0.0.1:0\n  insecurePrincipal: ${ALICE}`));
    d = await startDaemon({ token, configPath: path });
    c = client(d.endpoint);
  });
  afterAll(async () => {
    c?.close();
    await d?.stop();
    d?.token.remove();
  });

  it("gets PERMISSION_DENIED with x-kms-error-type AccessDeniedException", async () => {
    const err = await rpcError(c, c.createKey, CreateKeyRequest.fromPartial({}));
    expect(err).toMatchObject({ code: status.PERMISSION_DENIED, type: "AccessDeniedException" });
    expect(err.details).toContain(`User: ${ALICE} is not authorized to perform: kms:CreateKey`);
    expect(d.logs.some((l) => String(l.msg).includes("UNAUTHENTICATED") && l.principal === ALICE)).toBe(true);
  });
});

describe("gRPC over mTLS", () => {
  let d: DaemonHandle;
  let pki: TestPki;
  beforeAll(async () => {
    pki = createTestPki();
    const token = createTestToken("p11kms-mtls");
    const path = writeConfig(token);
    const tls = `grpc:\n  listen: 127.0.0.1:0\n  insecure: false\n  tls:\n    certFile: ${pki.serverCert}\n    keyFile: ${pki.serverKey}\n    clientCaFile: ${pki.caFile}\n    principalFrom: uri-san`;
    writeFileSync(path, readFileSync(path, "utf8").replace("grpc:\n  listen: 127.0.0.1:0", tls));
    d = await startDaemon({ token, configPath: path });
  });
  afterAll(async () => {
    await d?.stop();
    d?.token.remove();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const connect = (cert?: { cert: Buffer; key: Buffer }) =>
    new KeyManagementServiceClient(`127.0.0.1:${d.port}`, cert ? credentials.createSsl(pki.ca, cert.key, cert.cert) : credentials.createSsl(pki.ca));

  it("a valid client certificate: the principal is its URI SAN (the administrator may create keys)", async () => {
    const c = connect(pki.client("admin", { uri: ADMIN_PRINCIPAL }));
    try {
      const key = await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}));
      expect(key.keyMetadata?.keyState).toBe("Enabled");
      const other = connect(pki.client("alice", { uri: ALICE }));
      try {
        expect(await rpcError(other, other.describeKey, DescribeKeyRequest.fromPartial({ keyId: key.keyMetadata!.keyId }))).toMatchObject({
          code: status.PERMISSION_DENIED,
          type: "AccessDeniedException",
        });
      } finally {
        other.close();
      }
    } finally {
      c.close();
    }
  });

  it("a certificate without a URI SAN is refused with PERMISSION_DENIED", async () => {
    const c = connect(pki.client("nouri"));
    try {
      expect(await rpcError(c, c.createKey, CreateKeyRequest.fromPartial({}))).toMatchObject({ code: status.PERMISSION_DENIED, type: "AccessDeniedException" });
    } finally {
      c.close();
    }
  });

  type Pem = { cert: Buffer; key: Buffer } | undefined;
  const refused: [string, () => Pem][] = [
    ["expired", () => pki.client("expired", { uri: ADMIN_PRINCIPAL, expired: true })],
    ["issued by another CA", () => pki.client("rogue", { uri: ADMIN_PRINCIPAL, otherCa: true })],
    ["missing", () => undefined],
  ];
  it.each(refused)("a %s client certificate never reaches the service (the TLS handshake fails)", async (_name, make) => {
    const c = connect(make());
    try {
      const err = await rpcError(c, c.createKey, CreateKeyRequest.fromPartial({}));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.type).toBeUndefined();
    } finally {
      c.close();
    }
  });

  it("the CLI connects with --ca-bundle, --client-cert and --client-key", () => {
    pki.client("cli", { uri: ADMIN_PRINCIPAL });
    const tlsArgs = ["--endpoint", `127.0.0.1:${d.port}`, "--ca-bundle", pki.caFile, "--client-cert", join(pki.dir, "cli.pem"), "--client-key", join(pki.dir, "cli.key")];
    const out = execFileSync(process.execPath, [CLI, ...tlsArgs, "list-keys"], { encoding: "utf8" });
    expect(JSON.parse(out)).toMatchObject({ Truncated: false });
  });

  it("plaintext clients cannot talk to the mTLS port", async () => {
    const c = client(`127.0.0.1:${d.port}`);
    try {
      expect((await rpcError(c, c.createKey, CreateKeyRequest.fromPartial({}))).code).toBe(status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });
});
