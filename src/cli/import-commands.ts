import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { getParametersForImportResponse } from "../api/aws/responses/keys.js";
import { parseBlob } from "./args.js";
import type { CommandKit } from "./asymmetric-commands.js";
import { call } from "./client.js";
import { wrapKeyMaterial } from "./import-wrap.js";
import { CLI_STYLE } from "./output.js";

const keyIdOption = (c: Command) => c.requiredOption("--key-id <id>", "key id or key ARN of an EXTERNAL key");

function parseDate(value: string): Date {
  const d = /^\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${value} (ISO 8601 or epoch seconds)`);
  return d;
}

interface ImportOpts {
  keyId: string;
  materialFile?: string;
  importToken?: Buffer;
  encryptedKeyMaterial?: Buffer;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
  expirationModel?: string;
  validTo?: Date;
}

/**
 * BYOK commands with the AWS CLI's names and output shapes, plus a one-step import: with --material-file,
 * import-key-material fetches parameters, wraps the material locally (node:crypto) and imports it, so the
 * plaintext material never travels; it is wiped from memory after wrapping.
 */
export function registerImportCommands({ kms }: Pick<CommandKit, "kms">): void {
  kms<{ keyId: string; wrappingAlgorithm: string; wrappingKeySpec: string }>(
    "get-parameters-for-import",
    "get a wrapping public key and import token for an EXTERNAL key (valid 24 h)",
    (c) => keyIdOption(c).requiredOption("--wrapping-algorithm <alg>", "RSAES_OAEP_SHA_1 | RSA_AES_KEY_WRAP_SHA_1 | *_SHA_256").requiredOption("--wrapping-key-spec <spec>", "RSA_2048 | RSA_3072 | RSA_4096"),
    async (c, o, t) => getParametersForImportResponse(await call(c, c.getParametersForImport, o, t), CLI_STYLE),
  );
  kms<ImportOpts>(
    "import-key-material",
    "import key material: --material-file wraps and imports in one step; or pass --import-token and --encrypted-key-material",
    (c) =>
      keyIdOption(c)
        .option(
          "--material-file <path>",
          "key material, wrapped locally: 32 raw bytes (SYMMETRIC_DEFAULT), the raw HMAC key (HMAC_*), or a DER PKCS#8 private key (RSA_*, ECC_*)",
        )
        .addOption(new Option("--import-token <blob>", "fileb://<path> or base64").argParser(parseBlob))
        .addOption(new Option("--encrypted-key-material <blob>", "fileb://<path> or base64").argParser(parseBlob))
        .option("--wrapping-algorithm <alg>", "with --material-file", "RSA_AES_KEY_WRAP_SHA_1")
        .option("--wrapping-key-spec <spec>", "with --material-file", "RSA_4096")
        .option("--expiration-model <model>", "KEY_MATERIAL_EXPIRES | KEY_MATERIAL_DOES_NOT_EXPIRE")
        .addOption(new Option("--valid-to <date>", "ISO 8601 or epoch seconds (KEY_MATERIAL_EXPIRES)").argParser(parseDate)),
    async (c, o, t) => {
      let importToken = o.importToken;
      let encrypted = o.encryptedKeyMaterial;
      if (o.materialFile !== undefined) {
        if (importToken || encrypted) throw new Error("--material-file excludes --import-token and --encrypted-key-material");
        const p = await call(c, c.getParametersForImport, { keyId: o.keyId, wrappingAlgorithm: o.wrappingAlgorithm, wrappingKeySpec: o.wrappingKeySpec }, t);
        const material = readFileSync(o.materialFile);
        try {
          encrypted = wrapKeyMaterial(material, Buffer.from(p.publicKey), o.wrappingAlgorithm);
        } finally {
          material.fill(0);
        }
        importToken = Buffer.from(p.importToken);
      }
      if (!importToken || !encrypted) throw new Error("give --material-file, or both --import-token and --encrypted-key-material");
      await call(c, c.importKeyMaterial, { keyId: o.keyId, importToken, encryptedKeyMaterial: encrypted, expirationModel: o.expirationModel ?? "", validTo: o.validTo }, t);
    },
  );
  kms<{ keyId: string }>(
    "delete-imported-key-material",
    "destroy an EXTERNAL key's material (the key returns to PendingImport)",
    keyIdOption,
    async (c, o, t) => void (await call(c, c.deleteImportedKeyMaterial, o, t)),
  );
}
