import { createReadStream, statSync } from "node:fs";
import type { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Envelope } from "@p11kms/client";
import { atomicOutput } from "./atomic-output.js";
import { progress } from "./progress.js";

export interface FileCommandOptions {
  readonly envelope: Envelope;
  readonly input: string;
  readonly output: string;
  readonly context: Record<string, string>;
}

/** `p11kms encrypt-file IN OUT`: IN/OUT may be "-" (stdin/stdout). */
export async function encryptFile(o: FileCommandOptions): Promise<void> {
  const { stream: input, size } = openInput(o.input);
  await run(o.output, 0o644, "encrypting", size, (out, bar) => pipeline(input, bar, o.envelope.encryptStream({ context: o.context, plaintextLength: size }), out));
}

/** `p11kms decrypt-file IN OUT`: the message's context must contain every pair of `context`. */
export async function decryptFile(o: FileCommandOptions): Promise<void> {
  const { stream: input, size } = openInput(o.input);
  // Plaintext files are created private (0600) whatever the umask.
  await run(o.output, 0o600, "decrypting", size, (out, bar) => pipeline(input, bar, o.envelope.decryptStream({ expectedContext: o.context }), out));
}

async function run(output: string, mode: number, label: string, size: number | undefined, body: (out: Writable, bar: Transform) => Promise<void>): Promise<void> {
  const bar = progress(label, size);
  try {
    if (output === "-") {
      // stdout cannot be atomic: on failure the consumer has already seen the frames that verified; the exit
      // status says the output is incomplete. Files are the safe choice for decrypt.
      await body(process.stdout, bar.stream);
      return;
    }
    const out = atomicOutput(output, mode);
    try {
      await body(out.stream, bar.stream);
      await out.commit();
    } catch (err) {
      await out.abort();
      throw err;
    }
  } finally {
    bar.stop();
  }
}

function openInput(path: string): { stream: Readable; size: number | undefined } {
  if (path === "-") return { stream: process.stdin, size: undefined };
  const st = statSync(path); // throws ENOENT/EACCES with the path, reported as is
  if (!st.isFile()) return { stream: createReadStream(path), size: undefined };
  return { stream: createReadStream(path), size: st.size };
}
