import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { P11KmsClient } from "../../packages/client/src/client/kms-client.js";
import { Envelope } from "../../packages/client/src/envelope/envelope.js";
import { type DaemonHandle, startDaemon } from "../helpers/daemon.js";
import { generatedStream } from "../helpers/stream-check.js";

// 2 GiB + 1 byte: past the 2^31 mark (32-bit offsets would break there) and not a multiple of the frame.
// Streamed through encrypt and decrypt at once, never stored: memory stays constant. About 3-5 s on 2 cores.
const SIZE = 2 * 1024 ** 3 + 1;

let d: DaemonHandle;
let kms: P11KmsClient;
let keyId: string;

beforeAll(async () => {
  d = await startDaemon();
  kms = new P11KmsClient({ endpoint: d.endpoint });
  keyId = (await kms.createKey()).keyMetadata.arn;
});
afterAll(async () => {
  kms?.close();
  await d?.stop();
  d?.token.remove();
});

describe("a multi-GB stream", () => {
  it("round-trips 2 GiB through the SDK with a real KMS key, in constant memory", async () => {
    const env = new Envelope({ kms, keyIds: [keyId] });
    const g = generatedStream(SIZE);
    const verifier = g.verifier();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const t = Date.now();
    try {
      await pipeline(g.source(), env.encryptStream({ context: { test: "large" } }), env.decryptStream({ expectedContext: { test: "large" } }), verifier);
    } finally {
      clearInterval(timer);
    }
    expect(verifier.received()).toBe(SIZE);
    // Constant memory: the RSS grows by far less than the data (a buffered stream would grow by gigabytes).
    expect(peak - rssBefore).toBeLessThan(128 * 1024 * 1024);
    console.log(`2 GiB envelope round trip: ${Date.now() - t} ms, RSS growth ${((peak - rssBefore) / 1048576).toFixed(0)} MiB`);
  }, 120_000);
});
