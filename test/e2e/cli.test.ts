import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, type DaemonHandle, startDaemon } from "../helpers/daemon.js";

const run = promisify(execFile);
let d: DaemonHandle;

beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d?.stop();
  d?.token.remove();
});

async function cli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  return run(process.execPath, [CLI, "--endpoint", d.endpoint, ...args]).then(
    (r) => ({ out: r.stdout, err: r.stderr, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => ({ out: e.stdout, err: e.stderr, code: e.code }),
  );
}

describe("p11kms CLI against a running daemon", () => {
  it("round-trips a file as the README shows", async () => {
    const created = JSON.parse((await cli("create-key", "--description", "cli", "--tags", "TagKey=env,TagValue=test")).out);
    expect(created.KeyMetadata).toMatchObject({ KeyState: "Enabled", KeySpec: "SYMMETRIC_DEFAULT", Description: "cli", Enabled: true });
    const keyId: string = created.KeyMetadata.KeyId;

    const secret = join(d.token.dir, "secret.txt");
    writeFileSync(secret, "the launch codes\n");
    const encrypted = JSON.parse((await cli("encrypt", "--key-id", keyId, "--plaintext", `fileb://${secret}`, "--encryption-context", "app=cli,env=test")).out);
    expect(encrypted.KeyId).toBe(created.KeyMetadata.Arn);
    const blobFile = join(d.token.dir, "x.bin");
    writeFileSync(blobFile, Buffer.from(encrypted.CiphertextBlob, "base64"));

    const text = await cli("decrypt", "--ciphertext-blob", `fileb://${blobFile}`, "--encryption-context", '{"env":"test","app":"cli"}', "--query", "Plaintext", "--output", "text");
    expect(Buffer.from(text.out.trim(), "base64").toString()).toBe(readFileSync(secret, "utf8"));

    const described = JSON.parse((await cli("describe-key", "--key-id", keyId)).out);
    expect(described.KeyMetadata.KeyId).toBe(keyId);
    const listed = JSON.parse((await cli("list-keys")).out);
    expect(listed.Keys.map((k: { KeyId: string }) => k.KeyId)).toContain(keyId);

    const dk = JSON.parse((await cli("generate-data-key", "--key-id", keyId, "--key-spec", "AES_128")).out);
    expect(Buffer.from(dk.Plaintext, "base64").length).toBe(16);
    const rnd = JSON.parse((await cli("generate-random", "--number-of-bytes", "24")).out);
    expect(Buffer.from(rnd.Plaintext, "base64").length).toBe(24);
  });

  it("prints service errors as the AWS CLI does and exits 254", async () => {
    const r = await cli("describe-key", "--key-id", "4a4b2c6e-0000-4000-8000-000000000000");
    expect(r.code).toBe(254);
    expect(r.err).toContain("An error occurred (NotFoundException) when calling the DescribeKey operation");
    const blob = await cli("decrypt", "--ciphertext-blob", Buffer.from("nonsense".repeat(10)).toString("base64"));
    expect(blob.code).toBe(254);
    expect(blob.err).toContain("(InvalidCiphertextException)");
  });

  it("rejects bad arguments before calling (exit 252)", async () => {
    expect((await cli("encrypt", "--key-id", "k")).code).toBe(252);
    expect((await cli("encrypt", "--key-id", "k", "--plaintext", "not base64!")).code).toBe(252);
    expect((await cli("encrypt", "--key-id", "k", "--plaintext", "fileb:///no/such/file")).code).toBe(252);
    expect((await cli("generate-random", "--number-of-bytes", "ten")).code).toBe(252);
  });
});
