import { randomBytes } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * An output file that appears only complete: bytes go to a temporary file in the same directory (same
 * file system, so the rename is atomic), which replaces the target only when `commit` is called. `abort`
 * (or a crash) leaves the target untouched; a crash may leave a `.p11kms-*.tmp` file, never a partial OUT.
 */
export interface AtomicOutput {
  readonly stream: WriteStream;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export function atomicOutput(target: string, mode: number): AtomicOutput {
  const temp = join(dirname(target), `.${basename(target)}.p11kms-${randomBytes(6).toString("hex")}.tmp`);
  // "wx": never follow or reuse an existing file at the temporary name. flush: fsync before close, so the
  // renamed file's content is on disk before its name is.
  const stream = createWriteStream(temp, { flags: "wx", mode, flush: true });
  let done = false;
  return {
    stream,
    async commit() {
      await new Promise<void>((resolve, reject) => (stream.closed ? resolve() : stream.once("close", () => resolve()).once("error", reject)));
      await rename(temp, target);
      done = true;
    },
    async abort() {
      if (done) return;
      done = true;
      stream.destroy();
      await new Promise<void>((r) => (stream.closed ? r() : stream.once("close", () => r())));
      await unlink(temp).catch(() => undefined);
    },
  };
}
