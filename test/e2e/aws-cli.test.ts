import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DaemonHandle, startDaemon } from "../helpers/daemon.js";

const run = promisify(execFile);
// Debian's AWS CLI v2 (package awscli); another `aws` (v1) may come first on PATH, so name it exactly.
const AWS = "/usr/bin/aws";
let d: DaemonHandle;

beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d?.stop();
  d?.token.remove();
});

async function aws(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const env = {
    PATH: process.env.PATH,
    HOME: d.token.dir,
    AWS_ACCESS_KEY_ID: d.accessKey.accessKeyId,
    AWS_SECRET_ACCESS_KEY: d.accessKey.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_PAGER: "",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  return run(AWS, ["--endpoint-url", d.awsEndpoint, "kms", ...args], { env }).then(
    (r) => ({ out: r.stdout, err: r.stderr, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => ({ out: e.stdout, err: e.stderr, code: e.code }),
  );
}

describe("AWS CLI v2 against the facade", () => {
  it("creates a key, encrypts a file with fileb:// and decrypts it back", async () => {
    const created = await aws("create-key", "--description", "from the aws cli");
    expect(created.err).toBe("");
    const keyId = JSON.parse(created.out).KeyMetadata.KeyId as string;

    const secret = join(d.token.dir, "secret.txt");
    writeFileSync(secret, "top secret from the AWS CLI\n");
    const enc = await aws("encrypt", "--key-id", keyId, "--plaintext", `fileb://${secret}`, "--encryption-context", "app=cli", "--query", "CiphertextBlob", "--output", "text");
    expect(enc.code).toBe(0);
    const blob = join(d.token.dir, "secret.bin");
    writeFileSync(blob, Buffer.from(enc.out.trim(), "base64"));

    const dec = await aws("decrypt", "--ciphertext-blob", `fileb://${blob}`, "--encryption-context", "app=cli", "--query", "Plaintext", "--output", "text");
    expect(dec.code).toBe(0);
    expect(Buffer.from(dec.out.trim(), "base64").toString()).toBe(readFileSync(secret, "utf8"));

    const dk = JSON.parse((await aws("generate-data-key", "--key-id", keyId, "--key-spec", "AES_256")).out);
    expect(Buffer.from(dk.Plaintext, "base64").length).toBe(32);
    const listed = JSON.parse((await aws("list-keys")).out);
    expect(listed.Keys.map((k: { KeyId: string }) => k.KeyId)).toContain(keyId);
  });

  it("shows the service's exception names", async () => {
    const r = await aws("describe-key", "--key-id", "3c0f8a1e-0000-4000-8000-000000000000");
    expect(r.code).toBe(254);
    expect(r.err).toContain("An error occurred (NotFoundException) when calling the DescribeKey operation");
    const bad = await aws("decrypt", "--ciphertext-blob", "fileb:///etc/hostname");
    expect(bad.code).toBe(254);
    expect(bad.err).toContain("(InvalidCiphertextException)");
  });
});
