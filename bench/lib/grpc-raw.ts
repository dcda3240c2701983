import { type Client, Metadata } from "@grpc/grpc-js";

/**
 * One gRPC message as it travels in an HTTP/2 DATA frame: a 0 byte (not compressed), the u32 big-endian
 * length, then the protobuf bytes. This is the body h2load posts for every request.
 */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const identity = (b: Buffer): Buffer => b;

/**
 * Calls `path` with exactly `message` as the request bytes — the bytes h2load will send — and returns the
 * response bytes. A non-OK gRPC status rejects, with the status and details in the message. This is how the
 * bench proves a scenario's request succeeds before h2load (which sees only HTTP 200) replays it.
 */
export function rawUnary(client: Client, path: string, message: Uint8Array, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      path,
      identity,
      identity,
      Buffer.from(message),
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        if (err) reject(new Error(`${path} failed: gRPC status ${err.code} ${err.details}`));
        else if (!res) reject(new Error(`${path} returned no message`));
        else resolve(res);
      },
    );
  });
}
