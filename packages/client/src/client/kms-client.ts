import { type CallOptions, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  CreateKeyRequest,
  DecryptRequest,
  DescribeKeyRequest,
  EncryptRequest,
  GenerateDataKeyRequest,
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateRandomRequest,
  KeyManagementServiceClient,
  type KeyMetadata,
  ListKeysRequest,
  ReEncryptRequest,
} from "../gen/p11kms/v1/kms.js";
import { channelSecurity, type TlsOptions } from "./credentials.js";
import { fromServiceError, KmsClientError } from "./errors.js";
import { DEFAULT_RETRY_POLICY, REAL_ENVIRONMENT, type RetryEnvironment, type RetryPolicy, withRetries } from "./retry.js";
import type * as t from "./types.js";

export type { KeyMetadata };

/** How to reach the daemon and how patient to be. */
export interface P11KmsClientOptions {
  /** `host:port` of the gRPC endpoint, e.g. `127.0.0.1:50051`. */
  readonly endpoint: string;
  /** TLS or mutual TLS. Without it the connection is plaintext, which only loopback endpoints accept. */
  readonly tls?: TlsOptions;
  /** Allow plaintext to a non-loopback endpoint (don't, outside tests). */
  readonly insecure?: boolean;
  /** Deadline of each call, retries included (ms). Default 30 000. */
  readonly timeoutMs?: number;
  /** Retries of idempotent operations on throttling and unavailability. */
  readonly retry?: Partial<RetryPolicy>;
  /** Injectable time and randomness (tests). */
  readonly environment?: RetryEnvironment;
}

/** Per-call overrides. */
export interface CallSettings {
  readonly timeoutMs?: number;
}

type Unary<Req, Res> = (req: Req, md: Metadata, options: Partial<CallOptions>, cb: (err: ServiceError | null, res: Res) => void) => unknown;

/**
 * A typed client of the p11kms gRPC API. Every call has a deadline; idempotent operations (everything but
 * CreateKey) are retried with exponential backoff and full jitter when throttled or when the service is
 * unavailable; failures are {@link KmsClientError}s carrying the AWS exception name.
 *
 * ```ts
 * const kms = new P11KmsClient({ endpoint: "127.0.0.1:50051" });
 * const { plaintext, ciphertextBlob } = await kms.generateDataKey({ keyId, keySpec: "AES_256" });
 * ```
 */
export class P11KmsClient {
  private readonly grpc: KeyManagementServiceClient;
  private readonly timeoutMs: number;
  private readonly policy: RetryPolicy;
  private readonly env: RetryEnvironment;

  constructor(options: P11KmsClientOptions) {
    const security = channelSecurity(options.endpoint, options.tls, options.insecure);
    this.grpc = new KeyManagementServiceClient(options.endpoint, security.credentials, security.options);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.env = options.environment ?? REAL_ENVIRONMENT;
  }

  async createKey(req: t.CreateKeyInput = {}, s?: CallSettings): Promise<{ keyMetadata: KeyMetadata }> {
    // Not idempotent: a retried CreateKey whose first attempt succeeded unseen would make a second key.
    const res = await this.invoke("CreateKey", this.grpc.createKey, CreateKeyRequest.fromPartial({ ...req, tags: req.tags ? [...req.tags] : [] }), false, s);
    return { keyMetadata: res.keyMetadata! };
  }

  async describeKey(req: { keyId: string }, s?: CallSettings): Promise<{ keyMetadata: KeyMetadata }> {
    const res = await this.invoke("DescribeKey", this.grpc.describeKey, DescribeKeyRequest.fromPartial(req), true, s);
    return { keyMetadata: res.keyMetadata! };
  }

  async listKeys(req: { limit?: number; marker?: string } = {}, s?: CallSettings): Promise<t.ListKeysOutput> {
    const res = await this.invoke("ListKeys", this.grpc.listKeys, ListKeysRequest.fromPartial(req), true, s);
    return { keys: res.keys, truncated: res.truncated, ...(res.truncated ? { nextMarker: res.nextMarker } : {}) };
  }

  async encrypt(req: t.EncryptInput, s?: CallSettings): Promise<t.EncryptOutput> {
    const r = EncryptRequest.fromPartial({ ...req, plaintext: buf(req.plaintext), encryptionContext: map(req.encryptionContext), grantTokens: list(req.grantTokens) });
    const res = await this.invoke("Encrypt", this.grpc.encrypt, r, true, s);
    return { ciphertextBlob: Buffer.from(res.ciphertextBlob), keyId: res.keyId, encryptionAlgorithm: res.encryptionAlgorithm };
  }

  async decrypt(req: t.DecryptInput, s?: CallSettings): Promise<t.DecryptOutput> {
    const r = DecryptRequest.fromPartial({ ...req, ciphertextBlob: buf(req.ciphertextBlob), encryptionContext: map(req.encryptionContext), grantTokens: list(req.grantTokens) });
    const res = await this.invoke("Decrypt", this.grpc.decrypt, r, true, s);
    return { plaintext: Buffer.from(res.plaintext), keyId: res.keyId, encryptionAlgorithm: res.encryptionAlgorithm };
  }

  async reEncrypt(req: t.ReEncryptInput, s?: CallSettings): Promise<t.ReEncryptOutput> {
    const r = ReEncryptRequest.fromPartial({
      ...req,
      ciphertextBlob: buf(req.ciphertextBlob),
      sourceEncryptionContext: map(req.sourceEncryptionContext),
      destinationEncryptionContext: map(req.destinationEncryptionContext),
      grantTokens: list(req.grantTokens),
    });
    const res = await this.invoke("ReEncrypt", this.grpc.reEncrypt, r, true, s);
    return { ciphertextBlob: Buffer.from(res.ciphertextBlob), keyId: res.keyId, sourceKeyId: res.sourceKeyId };
  }

  async generateDataKey(req: t.GenerateDataKeyInput, s?: CallSettings): Promise<t.GenerateDataKeyOutput> {
    const r = GenerateDataKeyRequest.fromPartial({ ...req, encryptionContext: map(req.encryptionContext), grantTokens: list(req.grantTokens) });
    const res = await this.invoke("GenerateDataKey", this.grpc.generateDataKey, r, true, s);
    return { plaintext: Buffer.from(res.plaintext), ciphertextBlob: Buffer.from(res.ciphertextBlob), keyId: res.keyId };
  }

  async generateDataKeyWithoutPlaintext(req: t.GenerateDataKeyInput, s?: CallSettings): Promise<{ ciphertextBlob: Buffer; keyId: string }> {
    const r = GenerateDataKeyWithoutPlaintextRequest.fromPartial({ ...req, encryptionContext: map(req.encryptionContext), grantTokens: list(req.grantTokens) });
    const res = await this.invoke("GenerateDataKeyWithoutPlaintext", this.grpc.generateDataKeyWithoutPlaintext, r, true, s);
    return { ciphertextBlob: Buffer.from(res.ciphertextBlob), keyId: res.keyId };
  }

  async generateRandom(req: { numberOfBytes: number }, s?: CallSettings): Promise<{ plaintext: Buffer }> {
    const res = await this.invoke("GenerateRandom", this.grpc.generateRandom, GenerateRandomRequest.fromPartial(req), true, s);
    return { plaintext: Buffer.from(res.plaintext) };
  }

  /** Closes the channel; calls in flight fail. */
  close(): void {
    this.grpc.close();
  }

  private invoke<Req, Res>(operation: string, method: Unary<Req, Res>, req: Req, idempotent: boolean, s: CallSettings | undefined): Promise<Res> {
    const deadline = this.env.now() + (s?.timeoutMs ?? this.timeoutMs);
    let attempts = 0;
    const once = () =>
      new Promise<Res>((resolve, reject) => {
        attempts++;
        method.call(this.grpc, req, new Metadata(), { deadline }, (err, res) =>
          err ? reject(fromServiceError(err, operation, attempts)) : resolve(res),
        );
      });
    const retryable = (err: unknown) => idempotent && err instanceof KmsClientError && err.retryable;
    return withRetries(once, retryable, this.policy, deadline, this.env).catch((err: unknown) => {
      if (err instanceof KmsClientError) Object.defineProperty(err, "attempts", { value: attempts });
      throw err;
    });
  }
}

function map(ctx: Readonly<Record<string, string>> | undefined): Map<string, string> {
  return new Map(Object.entries(ctx ?? {}));
}

// A view, not a copy: the generated codec wants a Buffer, callers may hold any Uint8Array.
function buf(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function list(v: readonly string[] | undefined): string[] {
  return v ? [...v] : [];
}
