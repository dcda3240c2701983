import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
} from "@aws-sdk/client-kms";
import { afterAll, describe, expect, it } from "vitest";
import { wrapKeyMaterial } from "../../src/cli/import-wrap.js";
import { kmsClient } from "../helpers/aws.js";
import { startDaemon } from "../helpers/daemon.js";
import { openssl, withFiles } from "../helpers/openssl.js";
import type { TestToken } from "../helpers/softhsm.js";

const tokens: TestToken[] = [];
afterAll(() => tokens.forEach((t) => t.remove()));

const errorName = (p: Promise<unknown>) => p.then(() => "ok", (e: { name?: string }) => e.name ?? "?");

/** Wraps with the openssl CLI (an implementation independent of node:crypto), as docs/byok.md shows. */
function opensslWrap(material: Buffer, publicKey: Buffer, algorithm: string): Buffer {
  return withFiles({ "pub.der": publicKey, "key.bin": material, "eph.bin": randomBytes(32) }, (dir) => {
    const oaep = (input: string, out: string) => {
      const r = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-in", input, "-out", out,
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"], dir);
      expect(r.status, r.out).toBe(0);
    };
    if (algorithm === "RSAES_OAEP_SHA_1") {
      oaep("key.bin", "wrapped.bin");
      return readFileSync(join(dir, "wrapped.bin"));
    }
    oaep("eph.bin", "eph.wrapped");
    const hex = readFileSync(join(dir, "eph.bin")).toString("hex");
    const r = openssl(["enc", "-id-aes256-wrap-pad", "-K", hex, "-iv", "A65959A6", "-in", "key.bin", "-out", "key.wrapped"], dir);
    expect(r.status, r.out).toBe(0);
    return Buffer.concat([readFileSync(join(dir, "eph.wrapped")), readFileSync(join(dir, "key.wrapped"))]);
  });
}

async function importWith(kms: KMSClient, keyId: string, material: Buffer, alg: string, wrap = wrapKeyMaterial): Promise<void> {
  const p = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: alg as "RSAES_OAEP_SHA_1", WrappingKeySpec: "RSA_2048" }));
  const encrypted = wrap(material, Buffer.from(p.PublicKey!), alg);
  await kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: encrypted, ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE" }));
}

describe("BYOK through the AWS SDK (@aws-sdk/client-kms)", () => {
  it("imports material wrapped by node:crypto and by openssl, encrypts and decrypts, re-imports after deletion", async () => {
    const d = await startDaemon();
    tokens.push(d.token);
    const kms = kmsClient(d);
    for (const alg of ["RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1"]) {
      for (const wrap of [wrapKeyMaterial, opensslWrap]) {
        const meta = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!;
        expect(meta.KeyState).toBe("PendingImport");
        expect(meta.Origin).toBe("EXTERNAL");
        const material = randomBytes(32);
        await importWith(kms, meta.KeyId!, material, alg, wrap);
        const described = (await kms.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata!;
        expect(described.KeyState).toBe("Enabled");
        expect(described.ExpirationModel).toBe("KEY_MATERIAL_DOES_NOT_EXPIRE");
        expect(described.ValidTo).toBeUndefined();
        const blob = (await kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from(alg) }))).CiphertextBlob!;
        expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).toBe(alg);

        await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: meta.KeyId }));
        expect(await errorName(kms.send(new DecryptCommand({ CiphertextBlob: blob })))).toBe("KMSInvalidStateException");
        expect(await errorName(importWith(kms, meta.KeyId!, randomBytes(32), alg))).toBe("IncorrectKeyMaterialException");
        await importWith(kms, meta.KeyId!, material, alg);
        expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).toBe(alg);
      }
    }
    const imported = d.logs.filter((l) => l.event === "KeyMaterialImported");
    expect(imported.length).toBeGreaterThanOrEqual(4);
    expect(imported[0]).toMatchObject({ unwrapPath: "device", wrappingAlgorithm: "RSAES_OAEP_SHA_1" });
    expect(d.logs.some((l) => l.event === "KeyMaterialRemoved" && l.reason === "deleted")).toBe(true);
    await d.stop();
  }, 120_000);

  it("refuses tampered, foreign and expired tokens, PKCS#1 v1.5 and SHA-256 wrapping; parameters survive a restart within 24 h", async () => {
    const first = await startDaemon();
    tokens.push(first.token);
    let kms = kmsClient(first);
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!.KeyId!;
    const other = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!.KeyId!;
    const params = (alg = "RSAES_OAEP_SHA_1") =>
      kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: alg as "RSAES_OAEP_SHA_1", WrappingKeySpec: "RSA_2048" }));
    expect(await errorName(params("RSAES_PKCS1_V1_5"))).toBe("ValidationException");
    expect(await errorName(params("RSAES_OAEP_SHA_256"))).toBe("UnsupportedOperationException");
    const p = await params();
    expect(p.ParametersValidTo).toBeInstanceOf(Date);
    const encrypted = wrapKeyMaterial(randomBytes(32), Buffer.from(p.PublicKey!), "RSAES_OAEP_SHA_1");
    const imp = (token: Uint8Array, id = keyId) => errorName(kms.send(new ImportKeyMaterialCommand({ KeyId: id, ImportToken: token, EncryptedKeyMaterial: encrypted })));
    const tampered = Buffer.from(p.ImportToken!);
    tampered[12]! ^= 1;
    expect(await imp(tampered)).toBe("InvalidImportTokenException");
    expect(await imp(p.ImportToken!, other)).toBe("InvalidImportTokenException");
    const po = await kms.send(new GetParametersForImportCommand({ KeyId: other, WrappingAlgorithm: "RSA_AES_KEY_WRAP_SHA_1", WrappingKeySpec: "RSA_3072" }));
    await first.stop();

    // Within 24 h, parameters work across a restart (the wrapping key is a token object).
    const again = await startDaemon({ token: first.token, configPath: first.configPath });
    kms = kmsClient(again);
    const wrapped = wrapKeyMaterial(randomBytes(32), Buffer.from(po.PublicKey!), "RSA_AES_KEY_WRAP_SHA_1");
    await kms.send(new ImportKeyMaterialCommand({ KeyId: other, ImportToken: po.ImportToken, EncryptedKeyMaterial: wrapped }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: other }))).KeyMetadata!.KeyState).toBe("Enabled");
    await again.stop();

    // Expired: the same token after 25 hours (test clock offset).
    const later = await startDaemon({ token: first.token, configPath: first.configPath, env: { P11KMS_TEST_CLOCK_OFFSET_MS: String(25 * 3_600_000) } });
    kms = kmsClient(later);
    expect(await imp(p.ImportToken!)).toBe("ExpiredImportTokenException");
    await later.stop();
  }, 120_000);
});
