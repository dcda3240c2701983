import { type AuditEvent, eventNamesKey } from "./event.js";

export interface WatchFilter {
  /** Event names to deliver (e.g. DisableKey, ScheduleKeyDeletion); empty: all. */
  readonly eventNames: readonly string[];
  /** Key ids or key ARNs to deliver events of; empty: all. */
  readonly keyIds: readonly string[];
}

/** A subscriber's sink. `send` returns false when the subscriber's transport buffer is full. */
export interface Subscriber {
  send(event: AuditEvent, lostBefore: number): boolean;
  /** Called once the transport can take more after `send` returned false. */
  onDrain(resume: () => void): void;
  /** The daemon is stopping: finish the stream. */
  end(): void;
}

/**
 * Live audit events for alerting (WatchAuditEvents). Each subscriber has a bounded queue; a subscriber too
 * slow to keep up loses events instead of slowing requests down, and the next event it does get says how
 * many it lost.
 */
export class AuditHub {
  private readonly subs = new Set<Subscription>();

  constructor(
    private readonly maxQueue: number,
    private readonly onDropped: (n: number) => void,
  ) {}

  get subscribers(): number {
    return this.subs.size;
  }

  subscribe(filter: WatchFilter, sink: Subscriber): () => void {
    const sub = new Subscription(filter, sink, this.maxQueue, this.onDropped);
    this.subs.add(sub);
    return () => this.subs.delete(sub);
  }

  /** Ends every subscription (the daemon is stopping; open streams would hold the drain up). */
  closeAll(): void {
    for (const sub of this.subs) sub.end();
    this.subs.clear();
  }

  publish(events: readonly AuditEvent[]): void {
    if (this.subs.size === 0) return;
    for (const sub of this.subs) for (const e of events) if (sub.wants(e)) sub.push(e);
  }
}

class Subscription {
  /** Each queued event with the number of events dropped just before it (the gap the subscriber is told of). */
  private readonly queue: { event: AuditEvent; lostBefore: number }[] = [];
  private lost = 0;
  private blocked = false;
  private readonly names: Set<string>;

  constructor(
    private readonly filter: WatchFilter,
    private readonly sink: Subscriber,
    private readonly maxQueue: number,
    private readonly onDropped: (n: number) => void,
  ) {
    this.names = new Set(filter.eventNames);
  }

  wants(e: AuditEvent): boolean {
    if (this.names.size > 0 && !this.names.has(e.eventName)) return false;
    return this.filter.keyIds.length === 0 || this.filter.keyIds.some((k) => eventNamesKey(e, k));
  }

  push(e: AuditEvent): void {
    if (this.queue.length >= this.maxQueue) {
      this.lost++;
      this.onDropped(1);
      return;
    }
    this.queue.push({ event: e, lostBefore: this.lost });
    this.lost = 0;
    if (!this.blocked) this.pump();
  }

  end(): void {
    this.queue.length = 0;
    this.sink.end();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const { event, lostBefore } = this.queue.shift()!;
      if (!this.sink.send(event, lostBefore)) {
        this.blocked = true;
        this.sink.onDrain(() => {
          this.blocked = false;
          this.pump();
        });
        return;
      }
    }
  }
}
