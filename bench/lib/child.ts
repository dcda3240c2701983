import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Cleanup } from "./cleanup.js";

const TAIL_LINES = 40;

/**
 * A child process whose stdout is read as lines (JSON log lines for the daemon and our own children).
 * Output is always drained — a full pipe would stall a daemon mid-benchmark — and the last lines are kept
 * so a failure can show why the child died.
 */
export class Child {
  readonly exited: Promise<number | null>;
  private readonly tail: string[] = [];
  private readonly lineListeners = new Set<(line: string) => void>();
  private exitCode: number | null | undefined;

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    for (const stream of [proc.stdout, proc.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        this.tail.push(line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
        for (const l of this.lineListeners) l(line);
      });
    }
    this.exited = new Promise((resolve) =>
      proc.once("close", (code, signal) => {
        this.exitCode = code ?? (signal ? null : 0);
        resolve(this.exitCode);
      }),
    );
  }

  /** Spawns and registers the child with `cleanup` so it is stopped whatever happens next. */
  static start(cleanup: Cleanup, name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Child {
    const proc = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const child = new Child(name, proc);
    proc.once("error", (err) => child.tail.push(`spawn error: ${err.message}`));
    cleanup.add(`stop ${name}`, () => child.stop());
    return child;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Resolves with the first stdout/stderr line that `match` maps to a value; rejects on exit or timeout. */
  waitFor<T>(match: (line: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.lineListeners.delete(onLine);
        fn();
      };
      const onLine = (line: string) => {
        const v = match(line);
        if (v !== undefined) done(() => resolve(v));
      };
      const timeout = () => done(() => reject(this.failure(`timed out after ${timeoutMs} ms waiting for ${what}`)));
      const timer = setTimeout(timeout, timeoutMs);
      this.lineListeners.add(onLine);
      void this.exited.then((code) => done(() => reject(this.failure(`exited (${code}) before ${what}`))));
    });
  }

  /** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. Only ever signals this child's pid. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitCode !== undefined || this.proc.pid === undefined) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  failure(message: string): Error {
    return new Error(`${this.name}: ${message}\n--- last output of ${this.name} ---\n${this.tail.join("\n")}`);
  }
}

/** Parses a JSON line, or undefined for anything else (child processes may print plain text too). */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
