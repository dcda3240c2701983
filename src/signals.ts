import type { Logger } from "./observability/logger.js";

/** What the signals act on once the daemon has started. */
export interface SignalledDaemon {
  stop(): Promise<void>;
  /** SIGHUP: re-reads what can change without a restart (docs/operations.md, "Signals"). */
  reload(): void;
}

/**
 * The daemon's signal handling, installed before start-up begins and kept for the process's life.
 *
 * SIGTERM/SIGINT: the first stops the daemon (drain, then the audit log's shutdown digest); one that arrives
 * during start-up is honoured as soon as start-up has finished, so nothing is cut off half-way. A second
 * is logged and ignored: `make run` under a terminal or a supervisor often sends two (make forwards its own),
 * and dying on it would leave the run's audit tail unsigned. A third forces an immediate exit (status 1), for
 * an operator who really means it. SIGHUP reloads (see {@link SignalledDaemon.reload}).
 */
export class ProcessSignals {
  private daemon: SignalledDaemon | undefined;
  private stopSignals = 0;

  constructor(
    private readonly log: Logger,
    private readonly exit: (code: number) => never = process.exit,
    private readonly proc: Pick<NodeJS.Process, "on"> = process,
  ) {
    this.proc.on("SIGTERM", () => this.onStop("SIGTERM"));
    this.proc.on("SIGINT", () => this.onStop("SIGINT"));
    this.proc.on("SIGHUP", () => this.onReload());
  }

  /** The daemon has started: a stop asked for during start-up begins now. */
  attach(daemon: SignalledDaemon): void {
    this.daemon = daemon;
    if (this.stopSignals > 0) this.beginStop();
  }

  private onStop(signal: NodeJS.Signals): void {
    this.stopSignals++;
    if (this.stopSignals === 1) {
      this.log.info({ signal, startingUp: this.daemon === undefined }, "shutting down");
      if (this.daemon) this.beginStop();
    } else if (this.stopSignals === 2) {
      this.log.warn({ signal }, "already shutting down: signal ignored (one more forces an exit that leaves the audit log's tail unsigned)");
    } else {
      this.log.error({ signal }, "forced exit before the shutdown finished: the audit log's tail is left unsigned");
      this.exit(1);
    }
  }

  private beginStop(): void {
    this.daemon!.stop().then(
      () => this.exit(0),
      (err: unknown) => {
        this.log.error({ err }, "shutdown failed");
        this.exit(1);
      },
    );
  }

  private onReload(): void {
    if (!this.daemon || this.stopSignals > 0) {
      this.log.info({ signal: "SIGHUP" }, "reload ignored: the daemon is starting up or shutting down");
      return;
    }
    this.daemon.reload();
  }
}
