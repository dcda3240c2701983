import { type Command, Option } from "commander";
import { generateDataKeyPairResponse, generateDataKeyPairWithoutPlaintextResponse, generateMacResponse, getPublicKeyResponse, signResponse, verifyMacResponse, verifyResponse } from "../api/aws/responses/crypto.js";
import { parseBlob } from "./args.js";
import { call, type KmsClient } from "./client.js";

/** What main.ts lends these commands: its command registrar and the shared option builders. */
export interface CommandKit {
  kms<O>(name: string, description: string, build: (cmd: Command) => Command, run: (c: KmsClient, o: O, timeout: number) => Promise<unknown>): void;
  grantOption(): Option;
  contextOption(flag?: string): Option;
  toMap(ctx: Record<string, string> | undefined): Map<string, string>;
}

const blobOption = (flag: string, help: string) => new Option(`${flag} <blob>`, `${help}: fileb://<path> or base64`).argParser(parseBlob).makeOptionMandatory();

/**
 * sign, verify, get-public-key, generate-mac, verify-mac, generate-data-key-pair(-without-plaintext): the
 * AWS CLI's option names, and the AWS facade's response shapes (src/api/aws/responses/crypto.ts).
 */
export function registerAsymmetricCommands(kit: CommandKit): void {
  const { kms, grantOption, contextOption, toMap } = kit;

  interface SignOpts { keyId: string; message: Buffer; messageType?: string; signingAlgorithm: string; grantTokens?: string[]; dryRun?: boolean }
  const signOptions = (c: Command) =>
    c
      .requiredOption("--key-id <id>")
      .addOption(blobOption("--message", "message or digest"))
      .option("--message-type <type>", "RAW (default) or DIGEST")
      .requiredOption("--signing-algorithm <alg>", "e.g. ECDSA_SHA_256, RSASSA_PSS_SHA_256, ED25519_SHA_512")
      .addOption(grantOption())
      .option("--dry-run");
  const signRequest = (o: SignOpts) => ({ keyId: o.keyId, message: o.message, messageType: o.messageType ?? "", signingAlgorithm: o.signingAlgorithm, grantTokens: o.grantTokens ?? [], dryRun: !!o.dryRun });

  kms<SignOpts>("sign", "sign a message or digest with an asymmetric key", signOptions, async (c, o, t) => signResponse(await call(c, c.sign, signRequest(o), t)));

  kms<SignOpts & { signature: Buffer }>(
    "verify",
    "verify a signature on the HSM (an invalid one fails with KMSInvalidSignatureException)",
    (c) => signOptions(c).addOption(blobOption("--signature", "signature")),
    async (c, o, t) => verifyResponse(await call(c, c.verify, { ...signRequest(o), signature: o.signature }, t)),
  );

  kms<{ keyId: string; grantTokens?: string[] }>(
    "get-public-key",
    "the public key of an asymmetric key (DER SubjectPublicKeyInfo, base64)",
    (c) => c.requiredOption("--key-id <id>").addOption(grantOption()),
    async (c, o, t) => getPublicKeyResponse(await call(c, c.getPublicKey, { keyId: o.keyId, grantTokens: o.grantTokens ?? [] }, t)),
  );

  interface MacOpts { keyId: string; message: Buffer; macAlgorithm: string; grantTokens?: string[]; dryRun?: boolean }
  const macOptions = (c: Command) =>
    c
      .addOption(blobOption("--message", "message"))
      .requiredOption("--key-id <id>")
      .requiredOption("--mac-algorithm <alg>", "HMAC_SHA_224 | HMAC_SHA_256 | HMAC_SHA_384 | HMAC_SHA_512")
      .addOption(grantOption())
      .option("--dry-run");
  const macRequest = (o: MacOpts) => ({ keyId: o.keyId, message: o.message, macAlgorithm: o.macAlgorithm, grantTokens: o.grantTokens ?? [], dryRun: !!o.dryRun });

  kms<MacOpts>("generate-mac", "HMAC of a message with an HMAC key", macOptions, async (c, o, t) => generateMacResponse(await call(c, c.generateMac, macRequest(o), t)));

  kms<MacOpts & { mac: Buffer }>(
    "verify-mac",
    "verify an HMAC on the HSM (a wrong one fails with KMSInvalidMacException)",
    (c) => macOptions(c).addOption(blobOption("--mac", "MAC")),
    async (c, o, t) => verifyMacResponse(await call(c, c.verifyMac, { ...macRequest(o), mac: o.mac }, t)),
  );

  interface PairOpts { keyId: string; keyPairSpec: string; encryptionContext?: Record<string, string>; grantTokens?: string[]; dryRun?: boolean }
  const pairOptions = (c: Command) =>
    c
      .addOption(contextOption())
      .requiredOption("--key-id <id>", "symmetric key that encrypts the private key")
      .requiredOption("--key-pair-spec <spec>", "RSA_2048 | ... | ECC_NIST_P256 | ... | ECC_NIST_EDWARDS25519")
      .addOption(grantOption())
      .option("--dry-run");
  const pairRequest = (o: PairOpts) => ({ keyId: o.keyId, keyPairSpec: o.keyPairSpec, encryptionContext: toMap(o.encryptionContext), grantTokens: o.grantTokens ?? [], dryRun: !!o.dryRun });

  kms<PairOpts>("generate-data-key-pair", "a key pair: private key in plaintext and encrypted, public key", pairOptions, async (c, o, t) =>
    generateDataKeyPairResponse(await call(c, c.generateDataKeyPair, pairRequest(o), t)),
  );

  kms<PairOpts>("generate-data-key-pair-without-plaintext", "a key pair: encrypted private key and public key", pairOptions, async (c, o, t) =>
    generateDataKeyPairWithoutPlaintextResponse(await call(c, c.generateDataKeyPairWithoutPlaintext, pairRequest(o), t)),
  );
}
