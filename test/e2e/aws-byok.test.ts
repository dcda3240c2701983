import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateMacCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
  SignCommand,
} from "@aws-sdk/client-kms";
import { afterAll, describe, expect, it } from "vitest";
import { wrapKeyMaterial } from "../../src/cli/import-wrap.js";
import { kmsClient } from "../helpers/aws.js";
import { startDaemon } from "../helpers/daemon.js";
import { openssl, opensslVerify, withFiles } from "../helpers/openssl.js";
import type { TestToken } from "../helpers/softhsm.js";

const tokens: TestToken[] = [];
afterAll(() => tokens.forEach((t) => t.remove()));

const createPrivateKeyDer = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "der", type: "pkcs8" });
const errorName = (p: Promise<unknown>) => p.then(() => "ok", (e: { name?: string }) => e.name ?? "?");

/** Wraps with the openssl CLI (an implementation independent of node:crypto), as docs/byok.md shows. */
function opensslWrap(material: Buffer, publicKey: Buffer, algorithm: string): Buffer {
  const md = algorithm.endsWith("_SHA_256") ? "sha256" : "sha1";
  return withFiles({ "pub.der": publicKey, "key.bin": material, "eph.bin": randomBytes(32) }, (dir) => {
    const oaep = (input: string, out: string) => {
      const r = openssl(["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-in", input, "-out", out,
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", `rsa_oaep_md:${md}`, "-pkeyopt", `rsa_mgf1_md:${md}`], dir);
      expect(r.status, r.out).toBe(0);
    };
    if (algorithm.startsWith("RSAES_OAEP_")) {
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

async function importWith(kms: KMSClient, keyId: string, material: Buffer, alg: string, wrap = wrapKeyMaterial, validTo?: Date): Promise<void> {
  const p = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: alg as "RSAES_OAEP_SHA_1", WrappingKeySpec: "RSA_2048" }));
  const encrypted = wrap(material, Buffer.from(p.PublicKey!), alg);
  const expiry = validTo ? { ExpirationModel: "KEY_MATERIAL_EXPIRES" as const, ValidTo: validTo } : { ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE" as const };
  await kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: p.ImportToken, EncryptedKeyMaterial: encrypted, ...expiry }));
}

describe("BYOK through the AWS SDK (@aws-sdk/client-kms)", () => {
  it("imports material wrapped by node:crypto and by openssl with every algorithm, encrypts and decrypts, re-imports after deletion", async () => {
    const d = await startDaemon();
    tokens.push(d.token);
    const kms = kmsClient(d);
    for (const alg of ["RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"]) {
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
    // Log lines arrive from the child's stdout asynchronously: wait for the last one.
    await expect.poll(() => d.logs.filter((l) => l.event === "KeyMaterialImported").length).toBe(16);
    const imported = d.logs.filter((l) => l.event === "KeyMaterialImported");
    expect(imported[0]).toMatchObject({ unwrapPath: "device", wrappingAlgorithm: "RSAES_OAEP_SHA_1", reimport: false });
    // SoftHSM2 has no OAEP-SHA-256: those imports took the software path (importOaepSha256Fallback: auto).
    expect(imported.filter((l) => l.unwrapPath === "software").map((l) => l.wrappingAlgorithm)).toEqual([
      ...Array<string>(4).fill("RSAES_OAEP_SHA_256"),
      ...Array<string>(4).fill("RSA_AES_KEY_WRAP_SHA_256"),
    ]);
    expect(d.logs.find((l) => l.msg === "key store opened")).toMatchObject({ importOaepSha256: "software" });
    expect(d.logs.some((l) => l.event === "KeyMaterialRemoved" && l.reason === "deleted")).toBe(true);
    await d.stop();
  }, 120_000);

  it("refuses tampered, foreign and expired tokens and PKCS#1 v1.5; parameters survive a restart within 24 h; deny refuses SHA-256", async () => {
    const first = await startDaemon();
    tokens.push(first.token);
    let kms = kmsClient(first);
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!.KeyId!;
    const other = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL" }))).KeyMetadata!.KeyId!;
    const params = (alg = "RSAES_OAEP_SHA_1") =>
      kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: alg as "RSAES_OAEP_SHA_1", WrappingKeySpec: "RSA_2048" }));
    expect(await errorName(params("RSAES_PKCS1_V1_5"))).toBe("ValidationException");
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

    // importOaepSha256Fallback: deny → the SHA-256 algorithms are refused before anything is wrapped.
    const denyPath = join(first.token.dir, "deny.yaml");
    writeFileSync(denyPath, readFileSync(first.configPath, "utf8").replace(/^( {4}uri: .*)$/m, "$1\n    importOaepSha256Fallback: deny"));
    const denied = await startDaemon({ token: first.token, configPath: denyPath });
    kms = kmsClient(denied);
    expect(await errorName(params("RSAES_OAEP_SHA_256"))).toBe("UnsupportedOperationException");
    expect(await errorName(params("RSA_AES_KEY_WRAP_SHA_256"))).toBe("UnsupportedOperationException");
    expect(denied.logs.find((l) => l.msg === "key store opened")).toMatchObject({ importOaepSha256: "unsupported" });
    await denied.stop();
  }, 120_000);

  it("imports HMAC material and an EC private key made by openssl; re-imports the same material to change ValidTo", async () => {
    const d = await startDaemon();
    tokens.push(d.token);
    const kms = kmsClient(d);
    const hmacKey = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL", KeySpec: "HMAC_384", KeyUsage: "GENERATE_VERIFY_MAC" }))).KeyMetadata!.KeyId!;
    const hmacMaterial = randomBytes(100);
    await importWith(kms, hmacKey, hmacMaterial, "RSAES_OAEP_SHA_256", opensslWrap);
    const mac = await kms.send(new GenerateMacCommand({ KeyId: hmacKey, Message: Buffer.from("m"), MacAlgorithm: "HMAC_SHA_384" }));
    expect(Buffer.from(mac.Mac!)).toEqual(createHmac("sha384", hmacMaterial).update("m").digest());
    expect(await errorName(importWith(kms, hmacKey, randomBytes(47), "RSAES_OAEP_SHA_1"))).toBe("IncorrectKeyMaterialException");

    // An EC key generated and wrapped by openssl alone, as docs/byok.md shows. `genpkey -outform DER`
    // alone writes SEC1 (RFC 5915), not PKCS#8: AWS and p11kms refuse that.
    const [sec1, pkcs8] = withFiles({}, (dir) => {
      expect(openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem"], dir).status).toBe(0);
      expect(openssl(["pkcs8", "-topk8", "-nocrypt", "-in", "k.pem", "-outform", "DER", "-out", "k.der"], dir).status).toBe(0);
      expect(openssl(["ec", "-in", "k.pem", "-outform", "DER", "-out", "sec1.der"], dir).status).toBe(0);
      return [readFileSync(join(dir, "sec1.der")), readFileSync(join(dir, "k.der"))];
    });
    const ecKey = (await kms.send(new CreateKeyCommand({ Origin: "EXTERNAL", KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" }))).KeyMetadata!.KeyId!;
    expect(await errorName(importWith(kms, ecKey, sec1, "RSA_AES_KEY_WRAP_SHA_1", opensslWrap))).toBe("IncorrectKeyMaterialException");
    await importWith(kms, ecKey, pkcs8, "RSA_AES_KEY_WRAP_SHA_1", opensslWrap);
    const publicKey = Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: ecKey }))).PublicKey!);
    expect(publicKey).toEqual(createPublicKey(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" })).export({ format: "der", type: "spki" }));
    const sig = await kms.send(new SignCommand({ KeyId: ecKey, Message: Buffer.from("signed"), MessageType: "RAW", SigningAlgorithm: "ECDSA_SHA_256" }));
    expect(opensslVerify(publicKey, "ECDSA_SHA_256", Buffer.from("signed"), Buffer.from(sig.Signature!))).toBe(true);

    // Same material again over present material: only ValidTo changes; other material is refused.
    const validTo = new Date(Math.ceil(Date.now() / 1000) * 1000 + 30 * 86_400_000);
    await importWith(kms, ecKey, pkcs8, "RSAES_OAEP_SHA_1", wrapKeyMaterial, validTo);
    const described = (await kms.send(new DescribeKeyCommand({ KeyId: ecKey }))).KeyMetadata!;
    expect([described.KeyState, described.ExpirationModel, described.ValidTo]).toEqual(["Enabled", "KEY_MATERIAL_EXPIRES", validTo]);
    const other = createPrivateKeyDer();
    expect(await errorName(importWith(kms, ecKey, other, "RSAES_OAEP_SHA_1"))).toBe("IncorrectKeyMaterialException");
    await expect.poll(() => d.logs.filter((l) => l.event === "KeyMaterialImported").map((l) => l.reimport)).toEqual([false, false, true]);
    await d.stop();
  }, 120_000);
});
