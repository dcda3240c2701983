import { rmSync } from "node:fs";

/**
 * Everything the benchmark must undo: child processes and temporary directories. Undone in reverse order
 * of registration (a daemon stops before its token directory is removed), on success, on error and on
 * SIGINT/SIGTERM, so an interrupted `make bench` leaves no daemon or token behind.
 */
export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;
  /** Set once SIGINT/SIGTERM arrived: failures after that are the interruption's, not worth reporting. */
  interrupted = false;

  add(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  removeDir(dir: string): void {
    this.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  }

  /** Runs every step once, even when an earlier one fails (failures are reported, not thrown). */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) {
        try {
          await step.run();
        } catch (err) {
          process.stderr.write(`cleanup: ${step.name} failed: ${(err as Error).message}\n`);
        }
      }
    })();
    return this.running;
  }

  /** On SIGINT/SIGTERM: clean up, then exit with the conventional 128+signal status. */
  onSignals(): void {
    const handler = (signal: NodeJS.Signals, code: number) => {
      this.interrupted = true;
      process.stderr.write(`\n${signal}: stopping children and removing temp dirs\n`);
      void this.runAll().finally(() => process.exit(code));
    };
    process.once("SIGINT", () => handler("SIGINT", 130));
    process.once("SIGTERM", () => handler("SIGTERM", 143));
  }
}
