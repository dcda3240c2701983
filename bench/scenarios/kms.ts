import { randomBytes } from "node:crypto";
import { call, connect, type KmsClient } from "../../src/cli/client.js";
import {
  CreateKeyRequest,
  DecryptRequest,
  DecryptResponse,
  EncryptRequest,
  EncryptResponse,
  GenerateDataKeyRequest,
  GenerateDataKeyResponse,
  KeyManagementServiceService as Kms,
} from "../../src/gen/p11kms/v1/kms.js";
import type { RunningDaemon } from "../lib/daemon.js";
import { rawUnary } from "../lib/grpc-raw.js";
import type { LoadTarget } from "../lib/load-scenario.js";

const TIMEOUT_MS = 10_000;

export interface KmsTargets {
  readonly encrypt32: LoadTarget;
  readonly encrypt4k: LoadTarget;
  readonly decrypt4k: LoadTarget;
  readonly generateDataKey: LoadTarget;
  close(): void;
}

/**
 * The daemon's scenarios on one AES key (made here through CreateKey unless one is given). Each precheck sends the very
 * bytes h2load will replay and checks the answer end to end: what Encrypt returns must Decrypt back.
 */
export async function kmsTargets(daemon: RunningDaemon, existingKeyId?: string): Promise<KmsTargets> {
  const client = connect(daemon.grpcAddress);
  const keyId =
    existingKeyId ??
    (await call(client, client.createKey, CreateKeyRequest.fromPartial({ description: "p11kms bench" }), TIMEOUT_MS)).keyMetadata?.keyId;
  if (!keyId) throw new Error("CreateKey returned no key id");

  const target = (
    name: string,
    method: { path: string },
    message: Uint8Array,
    check: (res: Buffer) => Promise<void>,
  ): LoadTarget => ({
    name,
    url: `http://${daemon.grpcAddress}${method.path}`,
    message,
    precheck: async () => check(await rawUnary(client, method.path, message)),
    // The metrics label is the RPC name, the last segment of the path.
    outcomes: { metricsUrl: daemon.metricsUrl, operation: method.path.slice(method.path.lastIndexOf("/") + 1) },
    serverPid: daemon.child.pid,
  });

  const encrypt = (bytes: number): LoadTarget => {
    const plaintext = randomBytes(bytes);
    const request = EncryptRequest.encode(EncryptRequest.fromPartial({ keyId, plaintext })).finish();
    return target(`Encrypt ${sizeLabel(bytes)}`, Kms.encrypt, request, async (res) => {
      await expectRoundTrip(client, EncryptResponse.decode(res).ciphertextBlob, plaintext);
    });
  };

  const plaintext4k = randomBytes(4096);
  const sealed = await call(client, client.encrypt, EncryptRequest.fromPartial({ keyId, plaintext: plaintext4k }), TIMEOUT_MS);
  const decryptRequest = DecryptRequest.encode(DecryptRequest.fromPartial({ ciphertextBlob: sealed.ciphertextBlob })).finish();
  const decrypt4k = target("Decrypt 4 KB", Kms.decrypt, decryptRequest, async (res) => {
    expectEqual(DecryptResponse.decode(res).plaintext, plaintext4k, "Decrypt plaintext");
  });

  const dataKeyRequest = GenerateDataKeyRequest.encode(GenerateDataKeyRequest.fromPartial({ keyId, keySpec: "AES_256" })).finish();
  const generateDataKey = target("GenerateDataKey AES_256", Kms.generateDataKey, dataKeyRequest, async (res) => {
    const dk = GenerateDataKeyResponse.decode(res);
    if (dk.plaintext.length !== 32) throw new Error(`GenerateDataKey returned a ${dk.plaintext.length}-byte key`);
    await expectRoundTrip(client, dk.ciphertextBlob, dk.plaintext);
  });

  return { encrypt32: encrypt(32), encrypt4k: encrypt(4096), decrypt4k, generateDataKey, close: () => client.close() };
}

function sizeLabel(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`;
}

/** Decrypts `blob` through the daemon and compares with what was sealed. */
async function expectRoundTrip(client: KmsClient, blob: Uint8Array, expected: Uint8Array): Promise<void> {
  const res = await call(client, client.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: Buffer.from(blob) }), TIMEOUT_MS);
  expectEqual(res.plaintext, expected, "round-trip plaintext");
}

function expectEqual(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (!Buffer.from(actual).equals(Buffer.from(expected))) throw new Error(`${what} differs from what was sent`);
}
