import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { ProcessSignals, type SignalledDaemon } from "../../src/signals.js";

/** ProcessSignals on a fake process: the signals are events, exit is recorded instead of taken. */
function harness(stopResult: Promise<void> = new Promise(() => undefined)) {
  const proc = new EventEmitter();
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("info", { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const exits: number[] = [];
  const signals = new ProcessSignals(log, ((code: number) => void exits.push(code)) as (code: number) => never, proc as unknown as NodeJS.Process);
  const calls = { stop: 0, reload: 0 };
  const daemon: SignalledDaemon = {
    stop: () => (calls.stop++, stopResult),
    reload: () => void calls.reload++,
  };
  const send = (s: NodeJS.Signals) => proc.emit(s);
  const msgs = () => lines.map((l) => l.msg);
  return { signals, daemon, calls, exits, send, msgs, lines };
}

describe("ProcessSignals", () => {
  it("stops on the first SIGTERM, ignores the second, forces exit 1 on the third", () => {
    const h = harness();
    h.signals.attach(h.daemon);
    h.send("SIGTERM");
    expect(h.calls.stop).toBe(1);
    h.send("SIGINT");
    expect(h.calls.stop).toBe(1);
    expect(h.exits).toEqual([]);
    h.send("SIGTERM");
    expect(h.exits).toEqual([1]);
    expect(h.msgs()).toEqual([
      "shutting down",
      "already shutting down: signal ignored (one more forces an exit that leaves the audit log's tail unsigned)",
      "forced exit before the shutdown finished: the audit log's tail is left unsigned",
    ]);
  });

  it("defers a stop asked for during start-up until the daemon is attached", () => {
    const h = harness();
    h.send("SIGINT");
    expect(h.calls.stop).toBe(0);
    expect(h.lines[0]).toMatchObject({ msg: "shutting down", signal: "SIGINT", startingUp: true });
    h.signals.attach(h.daemon);
    expect(h.calls.stop).toBe(1);
  });

  it("exits 0 once the stop has finished, 1 if it failed", async () => {
    const ok = harness(Promise.resolve());
    ok.signals.attach(ok.daemon);
    ok.send("SIGTERM");
    await new Promise((r) => setImmediate(r));
    expect(ok.exits).toEqual([0]);
    const bad = harness(Promise.reject(new Error("disk gone")));
    bad.signals.attach(bad.daemon);
    bad.send("SIGTERM");
    await new Promise((r) => setImmediate(r));
    expect(bad.exits).toEqual([1]);
    expect(bad.msgs()).toContain("shutdown failed");
  });

  it("reloads on SIGHUP only while serving", () => {
    const h = harness();
    h.send("SIGHUP");
    expect(h.calls.reload).toBe(0);
    h.signals.attach(h.daemon);
    h.send("SIGHUP");
    expect(h.calls.reload).toBe(1);
    h.send("SIGTERM");
    h.send("SIGHUP");
    expect(h.calls.reload).toBe(1);
    expect(h.msgs().filter((m) => m === "reload ignored: the daemon is starting up or shutting down")).toHaveLength(2);
  });
});
