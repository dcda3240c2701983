import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import type { ServiceError } from "@grpc/grpc-js";
import { decryptResponse, encryptResponse, generateDataKeyResponse, generateDataKeyWithoutPlaintextResponse, generateRandomResponse, reEncryptResponse } from "../api/aws/responses/crypto.js";
import { keyMetadataResponse, listKeysResponse } from "../api/aws/responses/keys.js";
import { collect, parseBlob, parseContext, parseIntArg, parseTag, type CliTag } from "./args.js";
import { registerAsymmetricCommands } from "./asymmetric-commands.js";
import { registerAuditCommands } from "./audit-commands.js";
import { registerAuthzCommands } from "./authz-commands.js";
import { call, connect, errorType, type KmsClient } from "./client.js";
import { registerEnvelopeCommands } from "./envelope-commands.js";
import { registerImportCommands } from "./import-commands.js";
import { registerLifecycleCommands } from "./lifecycle-commands.js";
import { CLI_STYLE, print } from "./output.js";
import { addServeCommand, runCli } from "./serve-command.js";

/**
 * The p11kms command: `serve` runs the daemon; every other command is one KMS operation over gRPC, with
 * the AWS CLI's option names and output shapes. Exit codes follow the AWS CLI: 0 ok, 252 bad usage,
 * 254 the service rejected the call, 255 anything else.
 */
const program = new Command("p11kms")
  .description("AWS-KMS-style key service on a PKCS#11 HSM")
  .addOption(new Option("--endpoint <host:port>", "gRPC endpoint of the daemon").env("P11KMS_ENDPOINT").default("127.0.0.1:50051"))
  .addOption(new Option("--output <format>", "output format").choices(["json", "text"]).default("json"))
  .option("--query <jmespath>", "JMESPath expression applied to the output (as the AWS CLI)")
  .addOption(new Option("--cli-read-timeout <seconds>", "deadline of each call").argParser(parseIntArg).default(30))
  .addOption(new Option("--ca-bundle <file>", "PEM CA certificate(s) to verify the daemon's TLS certificate (gRPC over mTLS)").env("P11KMS_CA_BUNDLE"))
  .addOption(new Option("--client-cert <file>", "PEM client certificate for mTLS").env("P11KMS_CLIENT_CERT"))
  .addOption(new Option("--client-key <file>", "PEM private key of --client-cert").env("P11KMS_CLIENT_KEY"))
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

addServeCommand(program);

program
  .command("create-access-key")
  .description("create a SigV4 access key file for the AWS-compatible endpoint (mode 0600)")
  .requiredOption("--out <path>", "file to create; an existing file is never overwritten")
  .option("--principal <arn>", "principal the key acts as (default: an IAM user ARN named after the key id)")
  .action(async (o: { out: string; principal?: string }) => {
    const { createAccessKeyFile } = await import("./access-key-file.js");
    const id = createAccessKeyFile(o.out, o.principal);
    // The secret goes only into the file; the terminal sees the id and where the secret is.
    process.stdout.write(`${JSON.stringify({ AccessKeyId: id, File: o.out }, null, 4)}\n`);
  });

/** Registers one KMS command: build the request, call, shape the response (with the facade's shapes, CLI_STYLE). */
function kms<O>(name: string, description: string, build: (cmd: Command) => Command, run: (c: KmsClient, o: O, timeout: number) => Promise<unknown>): void {
  const cmd = build(program.command(name).description(description));
  cmd.action(async (o: O) => {
    const g = program.opts<{ endpoint: string; output: string; query?: string; cliReadTimeout: number; caBundle?: string; clientCert?: string; clientKey?: string }>();
    const client = connect(g.endpoint, g);
    try {
      print(await run(client, o, g.cliReadTimeout * 1000), g);
    } catch (err) {
      const e = err as ServiceError;
      if (typeof e.code !== "number") throw err;
      process.stderr.write(`\nAn error occurred (${errorType(e)}) when calling the ${pascal(name)} operation: ${e.details}\n`);
      process.exitCode = 254;
    } finally {
      client.close();
    }
  });
}

const contextOption = (flag = "--encryption-context") => new Option(`${flag} <context>`, "k=v,k2=v2 or JSON").argParser(parseContext);
const grantOption = () => new Option("--grant-tokens <token>", "grant token (repeatable)").argParser(collect);

kms<{ description?: string; keySpec?: string; keyUsage?: string; origin?: string; tags?: CliTag[]; customKeyStoreId?: string; policy?: string; bypassPolicyLockoutSafetyCheck?: boolean }>(
  "create-key",
  "create a KMS key in the HSM",
  (c) =>
    c
      .option("--description <text>")
      .option("--key-spec <spec>", "SYMMETRIC_DEFAULT, RSA_2048, ECC_NIST_P256, ECC_NIST_EDWARDS25519, HMAC_256, ...")
      .option("--key-usage <usage>", "ENCRYPT_DECRYPT, SIGN_VERIFY or GENERATE_VERIFY_MAC")
      .option("--origin <origin>", "AWS_KMS, or EXTERNAL for imported material (docs/byok.md)")
      .option("--custom-key-store-id <id>", "key store (configured keyStores[].id); default: defaultKeyStore")
      .addOption(new Option("--tags <tag>", "TagKey=k,TagValue=v (repeatable) or JSON list").argParser(parseTag))
      .addOption(new Option("--policy <policy>", "key policy: JSON text or file://<path> (docs/authorization.md)").argParser((v) => (v.startsWith("file://") ? readFileSync(v.slice(7), "utf8") : v)))
      .option("--bypass-policy-lockout-safety-check", "accept a policy that would lock you out of PutKeyPolicy"),
  async (c, o, t) => {
    const res = await call(c, c.createKey, { description: o.description ?? "", keySpec: o.keySpec ?? "", keyUsage: o.keyUsage ?? "", origin: o.origin ?? "", customerMasterKeySpec: "", tags: o.tags ?? [], multiRegion: false, customKeyStoreId: o.customKeyStoreId ?? "", policy: o.policy ?? "", bypassPolicyLockoutSafetyCheck: !!o.bypassPolicyLockoutSafetyCheck }, t);
    return keyMetadataResponse(res.keyMetadata, CLI_STYLE);
  },
);

kms<{ keyId: string; grantTokens?: string[] }>(
  "describe-key",
  "show a key's metadata",
  (c) => c.requiredOption("--key-id <id>", "key id or key ARN").addOption(grantOption()),
  async (c, o, t) => keyMetadataResponse((await call(c, c.describeKey, { keyId: o.keyId, grantTokens: o.grantTokens ?? [] }, t)).keyMetadata, CLI_STYLE),
);

kms<{ limit?: number; marker?: string }>(
  "list-keys",
  "list keys (one page)",
  (c) => c.addOption(new Option("--limit <n>").argParser(parseIntArg)).option("--marker <marker>"),
  async (c, o, t) => listKeysResponse(await call(c, c.listKeys, { limit: o.limit, marker: o.marker ?? "" }, t)),
);

interface EncryptOpts {
  keyId: string;
  plaintext: Buffer;
  encryptionContext?: Record<string, string>;
  encryptionAlgorithm?: string;
  grantTokens?: string[];
  dryRun?: boolean;
}
kms<EncryptOpts>(
  "encrypt",
  "encrypt up to 4096 bytes under a key",
  (c) =>
    c
      .requiredOption("--key-id <id>")
      .addOption(new Option("--plaintext <blob>", "fileb://<path> or base64").argParser(parseBlob).makeOptionMandatory())
      .addOption(contextOption())
      .option("--encryption-algorithm <alg>")
      .addOption(grantOption())
      .option("--dry-run"),
  async (c, o, t) => {
    const res = await call(c, c.encrypt, { keyId: o.keyId, plaintext: o.plaintext, encryptionContext: toMap(o.encryptionContext), grantTokens: o.grantTokens ?? [], encryptionAlgorithm: o.encryptionAlgorithm ?? "", dryRun: !!o.dryRun }, t);
    return encryptResponse(res);
  },
);

interface DecryptOpts {
  ciphertextBlob: Buffer;
  keyId?: string;
  encryptionContext?: Record<string, string>;
  encryptionAlgorithm?: string;
  grantTokens?: string[];
  dryRun?: boolean;
}
kms<DecryptOpts>(
  "decrypt",
  "decrypt a ciphertext blob",
  (c) =>
    c
      .addOption(new Option("--ciphertext-blob <blob>", "fileb://<path> or base64").argParser(parseBlob).makeOptionMandatory())
      .option("--key-id <id>")
      .addOption(contextOption())
      .option("--encryption-algorithm <alg>")
      .addOption(grantOption())
      .option("--dry-run"),
  async (c, o, t) => {
    const res = await call(c, c.decrypt, { ciphertextBlob: o.ciphertextBlob, keyId: o.keyId ?? "", encryptionContext: toMap(o.encryptionContext), grantTokens: o.grantTokens ?? [], encryptionAlgorithm: o.encryptionAlgorithm ?? "", dryRun: !!o.dryRun }, t);
    return decryptResponse(res);
  },
);

interface ReEncryptOpts {
  ciphertextBlob: Buffer;
  destinationKeyId: string;
  sourceKeyId?: string;
  sourceEncryptionContext?: Record<string, string>;
  destinationEncryptionContext?: Record<string, string>;
  grantTokens?: string[];
  dryRun?: boolean;
}
kms<ReEncryptOpts>(
  "re-encrypt",
  "re-encrypt a blob under another key without exposing the plaintext",
  (c) =>
    c
      .addOption(new Option("--ciphertext-blob <blob>").argParser(parseBlob).makeOptionMandatory())
      .requiredOption("--destination-key-id <id>")
      .option("--source-key-id <id>")
      .addOption(contextOption("--source-encryption-context"))
      .addOption(contextOption("--destination-encryption-context"))
      .addOption(grantOption())
      .option("--dry-run"),
  async (c, o, t) => {
    const res = await call(c, c.reEncrypt, {
      ciphertextBlob: o.ciphertextBlob,
      sourceKeyId: o.sourceKeyId ?? "",
      destinationKeyId: o.destinationKeyId,
      sourceEncryptionContext: toMap(o.sourceEncryptionContext),
      destinationEncryptionContext: toMap(o.destinationEncryptionContext),
      sourceEncryptionAlgorithm: "",
      destinationEncryptionAlgorithm: "",
      grantTokens: o.grantTokens ?? [],
      dryRun: !!o.dryRun,
    }, t);
    return reEncryptResponse(res);
  },
);

interface DataKeyOpts {
  keyId: string;
  keySpec?: string;
  numberOfBytes?: number;
  encryptionContext?: Record<string, string>;
  grantTokens?: string[];
  dryRun?: boolean;
}
const dataKeyOptions = (c: Command) =>
  c
    .requiredOption("--key-id <id>")
    .option("--key-spec <spec>", "AES_256 or AES_128")
    .addOption(new Option("--number-of-bytes <n>").argParser(parseIntArg))
    .addOption(contextOption())
    .addOption(grantOption())
    .option("--dry-run");
const dataKeyRequest = (o: DataKeyOpts) => ({ keyId: o.keyId, keySpec: o.keySpec ?? "", numberOfBytes: o.numberOfBytes, encryptionContext: toMap(o.encryptionContext), grantTokens: o.grantTokens ?? [], dryRun: !!o.dryRun });

kms<DataKeyOpts>("generate-data-key", "generate a data key: plaintext and encrypted copy", dataKeyOptions, async (c, o, t) =>
  generateDataKeyResponse(await call(c, c.generateDataKey, dataKeyRequest(o), t)),
);

kms<DataKeyOpts>("generate-data-key-without-plaintext", "generate a data key, encrypted copy only", dataKeyOptions, async (c, o, t) =>
  generateDataKeyWithoutPlaintextResponse(await call(c, c.generateDataKeyWithoutPlaintext, dataKeyRequest(o), t)),
);

kms<{ numberOfBytes: number; customKeyStoreId?: string }>(
  "generate-random",
  "random bytes from the HSM",
  (c) => c.addOption(new Option("--number-of-bytes <n>").argParser(parseIntArg).makeOptionMandatory()).option("--custom-key-store-id <id>"),
  async (c, o, t) => generateRandomResponse(await call(c, c.generateRandom, { numberOfBytes: o.numberOfBytes, customKeyStoreId: o.customKeyStoreId ?? "" }, t)),
);

registerAsymmetricCommands({ kms, grantOption, contextOption, toMap });
registerLifecycleCommands({ kms });
registerImportCommands({ kms });
registerAuthzCommands({ kms, grantOption });

function toMap(ctx: Record<string, string> | undefined): Map<string, string> {
  return new Map(Object.entries(ctx ?? {}));
}

function pascal(command: string): string {
  return command.replace(/(^|-)([a-z])/g, (_, __, ch: string) => ch.toUpperCase());
}

registerEnvelopeCommands(program);
registerAuditCommands(program);

await runCli(program);
