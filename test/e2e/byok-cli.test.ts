import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { CLI, type DaemonHandle, startDaemon } from "../helpers/daemon.js";

const run = promisify(execFile);
let d: DaemonHandle | undefined;
afterAll(async () => {
  await d?.stop();
  d?.token.remove();
});

describe("p11kms CLI: BYOK", () => {
  it("imports a material file in one step, encrypts, deletes and re-imports it", async () => {
    d = await startDaemon();
    const daemon = d;
    const cli = async (...args: string[]) => (await run(process.execPath, [CLI, "--endpoint", daemon.endpoint, ...args])).stdout;
    const keyId = (JSON.parse(await cli("create-key", "--origin", "EXTERNAL")) as { KeyMetadata: { KeyId: string; KeyState: string } }).KeyMetadata.KeyId;
    const file = join(daemon.token.dir, "key.bin");
    writeFileSync(file, randomBytes(32), { mode: 0o600 });
    expect(await cli("import-key-material", "--key-id", keyId, "--material-file", file, "--wrapping-key-spec", "RSA_2048")).toBe("");
    const blob = (JSON.parse(await cli("encrypt", "--key-id", keyId, "--plaintext", Buffer.from("byok").toString("base64"))) as { CiphertextBlob: string }).CiphertextBlob;
    await cli("delete-imported-key-material", "--key-id", keyId);
    expect((JSON.parse(await cli("describe-key", "--key-id", keyId)) as { KeyMetadata: { KeyState: string } }).KeyMetadata.KeyState).toBe("PendingImport");
    await cli("import-key-material", "--key-id", keyId, "--material-file", file, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--wrapping-key-spec", "RSA_2048");
    const out = JSON.parse(await cli("decrypt", "--ciphertext-blob", blob)) as { Plaintext: string };
    expect(Buffer.from(out.Plaintext, "base64").toString()).toBe("byok");
    const params = JSON.parse(await cli("get-parameters-for-import", "--key-id", keyId, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--wrapping-key-spec", "RSA_2048")) as Record<string, unknown>;
    expect(Object.keys(params).sort()).toEqual(["ImportToken", "KeyId", "ParametersValidTo", "PublicKey"]);

    // HMAC material, wrapped with RSAES_OAEP_SHA_256 (the software path on SoftHSM2).
    const macKey = (JSON.parse(await cli("create-key", "--origin", "EXTERNAL", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC")) as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
    const hmacMaterial = randomBytes(48);
    const hmacFile = join(daemon.token.dir, "hmac.bin");
    writeFileSync(hmacFile, hmacMaterial, { mode: 0o600 });
    await cli("import-key-material", "--key-id", macKey, "--material-file", hmacFile, "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048");
    const mac = JSON.parse(await cli("generate-mac", "--key-id", macKey, "--mac-algorithm", "HMAC_SHA_256", "--message", Buffer.from("m").toString("base64"))) as { Mac: string };
    expect(Buffer.from(mac.Mac, "base64")).toEqual(createHmac("sha256", hmacMaterial).update("m").digest());
  }, 60_000);
});
