import { constants, createHash, createPublicKey, type KeyObject, randomBytes, verify } from "node:crypto";
import { call, type KmsClient, connect } from "../../src/cli/client.js";
import {
  CreateKeyRequest,
  GetPublicKeyRequest,
  KeyManagementServiceService as Kms,
  SignRequest,
  SignResponse,
  VerifyRequest,
  VerifyResponse,
} from "../../src/gen/p11kms/v1/kms.js";
import type { RunningDaemon } from "../lib/daemon.js";
import { rawUnary } from "../lib/grpc-raw.js";
import type { LoadTarget } from "../lib/load-scenario.js";

const TIMEOUT_MS = 10_000;

export interface SignTargets {
  readonly signEcdsa: LoadTarget;
  readonly verifyEcdsa: LoadTarget;
  readonly signRsa: LoadTarget;
  close(): void;
}

/** A signing key of the daemon and the public key it reports, to check its signatures outside it. */
interface SigningKey {
  readonly keyId: string;
  /** node:crypto verify options for the algorithm the bench uses with this key. */
  readonly verifyKey: KeyObject | { key: KeyObject; padding: number; saltLength: number };
}

/**
 * Sign and Verify on two fresh SIGN_VERIFY keys (ECC_NIST_P256, RSA_2048) made here through CreateKey.
 * Every request signs the same 32-byte SHA-256 digest with MessageType DIGEST, so the daemon does no
 * hashing and the device work is one signature. Each precheck verifies the signature h2load's request
 * bytes produce with node:crypto against GetPublicKey's SPKI — a signature the daemon merely accepts back
 * would prove nothing if signing were broken.
 */
export async function signTargets(daemon: RunningDaemon): Promise<SignTargets> {
  const client = connect(daemon.grpcAddress);
  // The digest of a known message: node:crypto then verifies over the message with "sha256", which is
  // exactly a signature over this digest (verify(null, digest) would hash the digest again).
  const message = randomBytes(64);
  const digest = createHash("sha256").update(message).digest();
  const ecdsa = await createSigningKey(client, "ECC_NIST_P256", (key) => key);
  const rsa = await createSigningKey(client, "RSA_2048", (key) => ({
    key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32, // AWS's PSS salt is the digest's length
  }));

  const target = (name: string, method: { path: string }, request: Uint8Array, check: (res: Buffer) => void): LoadTarget => ({
    name,
    url: `http://${daemon.grpcAddress}${method.path}`,
    message: request,
    precheck: async () => check(await rawUnary(client, method.path, request)),
    // The metrics label is the RPC name, the last segment of the path.
    outcomes: { metricsUrl: daemon.metricsUrl, operation: method.path.slice(method.path.lastIndexOf("/") + 1) },
    serverPid: daemon.child.pid,
  });

  const signRequest = (key: SigningKey, signingAlgorithm: string) =>
    SignRequest.encode(SignRequest.fromPartial({ keyId: key.keyId, message: digest, messageType: "DIGEST", signingAlgorithm })).finish();
  const expectValid = (key: SigningKey, res: Buffer, what: string): Buffer => {
    const signature = Buffer.from(SignResponse.decode(res).signature);
    if (!verify("sha256", message, key.verifyKey, signature)) throw new Error(`${what}: the signature does not verify with node:crypto`);
    return signature;
  };

  const signEcdsa = target("Sign ECDSA P-256", Kms.sign, signRequest(ecdsa, "ECDSA_SHA_256"), (res) => {
    expectValid(ecdsa, res, "Sign ECDSA_SHA_256");
  });
  const signRsa = target("Sign RSA-2048 PSS", Kms.sign, signRequest(rsa, "RSASSA_PSS_SHA_256"), (res) => {
    expectValid(rsa, res, "Sign RSASSA_PSS_SHA_256");
  });

  // Verify replays one real signature, itself checked with node:crypto before it is used.
  const signed = await rawUnary(client, Kms.sign.path, signRequest(ecdsa, "ECDSA_SHA_256"));
  const signature = expectValid(ecdsa, signed, "Sign for Verify");
  const verifyRequest = VerifyRequest.encode(
    VerifyRequest.fromPartial({ keyId: ecdsa.keyId, message: digest, messageType: "DIGEST", signature, signingAlgorithm: "ECDSA_SHA_256" }),
  ).finish();
  const verifyEcdsa = target("Verify ECDSA P-256", Kms.verify, verifyRequest, (res) => {
    if (!VerifyResponse.decode(res).signatureValid) throw new Error("Verify ECDSA_SHA_256 returned signatureValid = false");
  });

  return { signEcdsa, verifyEcdsa, signRsa, close: () => client.close() };
}

async function createSigningKey(
  client: KmsClient,
  keySpec: string,
  options: (key: KeyObject) => SigningKey["verifyKey"],
): Promise<SigningKey> {
  const request = CreateKeyRequest.fromPartial({ description: "p11kms bench", keyUsage: "SIGN_VERIFY", keySpec });
  const keyId = (await call(client, client.createKey, request, TIMEOUT_MS)).keyMetadata?.keyId;
  if (!keyId) throw new Error(`CreateKey ${keySpec} returned no key id`);
  const spki = (await call(client, client.getPublicKey, GetPublicKeyRequest.fromPartial({ keyId }), TIMEOUT_MS)).publicKey;
  const publicKey = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  return { keyId, verifyKey: options(publicKey) };
}
