import { Transform } from "node:stream";
import cliProgress from "cli-progress";

/**
 * A pass-through that drives a progress bar on stderr — only when stderr is a terminal, so scripts and
 * pipes see no escape codes. `total` is the input size when known.
 */
export function progress(label: string, total: number | undefined): { stream: Transform; stop(): void } {
  if (!process.stderr.isTTY) return { stream: new Transform({ transform: (c, _e, cb) => cb(null, c) }), stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: total ? `${label} [{bar}] {percentage}% {done}/{size}` : `${label} {done}`,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  bar.start(total ?? 0, 0, { done: mib(0), size: mib(total ?? 0) });
  const stream = new Transform({
    transform(chunk: Buffer, _e, cb) {
      done += chunk.length;
      bar.update(done, { done: mib(done) });
      cb(null, chunk);
    },
  });
  return { stream, stop: () => bar.stop() };
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
