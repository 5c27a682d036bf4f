import { BrokerUnavailableError } from './broker-access.ts';

/** Thrown by `send` when the connection went away: the batch is put back and sent again later. */
export class ConnectionLost extends Error {
  override readonly name = 'ConnectionLost';
}

type Item = { line: string; deadline: number | null; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout | null; done: boolean };

export type CommandQueueOptions = {
  /** Sends lines as one message; resolves with one entry per line: null when applied, else the broker's error. */
  send: (lines: string[]) => Promise<(string | null)[]>;
  /** Messages awaiting their answer at once (pipelined on one connection, so order is kept). */
  maxInFlight?: number;
  /** Commands per message. */
  maxLines?: number;
  /** Commands with a deadline (grants) waiting at most; past it a grant is refused as "broker overloaded". */
  maxQueued?: number;
  /** Why nothing is sent now (for the errors of grants that time out). */
  unavailableReason: () => string;
};

/**
 * Broker commands, queued, batched and sent with bounded concurrency; retried until the broker
 * answers. A command with a deadline (a grant someone waits for) is dropped and rejected with
 * BrokerUnavailableError when it could not be sent in time; one without (a revocation) stays until
 * it is applied. Commands are idempotent (put/delete), so resending after a lost connection is safe.
 */
export class CommandQueue {
  private readonly waiting: Item[] = [];
  private inFlight = 0;
  private open = false;
  private readonly o: Required<Omit<CommandQueueOptions, 'send' | 'unavailableReason'>> & CommandQueueOptions;

  constructor(opts: CommandQueueOptions) {
    this.o = { maxInFlight: 4, maxLines: 500, maxQueued: 50_000, ...opts };
  }

  get depth(): number {
    return this.waiting.length;
  }

  /** Resolves once the broker applied it; rejects with BrokerUnavailableError past `deadlineMs` (null: never). */
  enqueue(line: string, deadlineMs: number | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (deadlineMs !== null && this.waiting.length >= this.o.maxQueued) {
        reject(new BrokerUnavailableError(`broker overloaded: ${this.waiting.length} commands queued`));
        return;
      }
      const item: Item = { line, deadline: deadlineMs === null ? null : Date.now() + deadlineMs, resolve, reject, timer: null, done: false };
      if (deadlineMs !== null) {
        item.timer = setTimeout(() => {
          const i = this.waiting.indexOf(item);
          if (i < 0) return; // in flight: its answer decides
          this.waiting.splice(i, 1);
          this.finish(item, new BrokerUnavailableError(`broker did not take the command within ${deadlineMs} ms: ${this.o.unavailableReason()}`));
        }, deadlineMs);
        item.timer.unref();
      }
      this.waiting.push(item);
      this.pump();
    });
  }

  /** Sending stops while closed (connection lost, or a resync running) and resumes when opened. */
  setOpen(open: boolean): void {
    this.open = open;
    if (open) this.pump();
  }

  /** Rejects everything (shutdown). */
  clear(reason: string): void {
    for (const item of this.waiting.splice(0)) this.finish(item, new BrokerUnavailableError(reason));
  }

  private finish(item: Item, err: Error | null): void {
    if (item.done) return;
    item.done = true;
    if (item.timer) clearTimeout(item.timer);
    if (err) item.reject(err);
    else item.resolve();
  }

  private pump(): void {
    while (this.open && this.inFlight < this.o.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.o.maxLines);
      this.inFlight++;
      this.o.send(batch.map((b) => b.line)).then(
        (results) => {
          this.inFlight--;
          batch.forEach((item, i) => this.finish(item, results[i] ? new Error(`broker refused "${item.line.split(' ').slice(0, 2).join(' ')}": ${results[i]}`) : null));
          this.pump();
        },
        () => {
          // lost or unanswered: back to the front, in order, unless a grant's deadline passed meanwhile
          this.inFlight--;
          const now = Date.now();
          const again = batch.filter((item) => {
            if (item.deadline !== null && now > item.deadline) {
              this.finish(item, new BrokerUnavailableError(`broker did not answer in time: ${this.o.unavailableReason()}`));
              return false;
            }
            return !item.done;
          });
          this.waiting.unshift(...again);
          // a connection still up that did not answer: try again shortly rather than at once
          setTimeout(() => this.pump(), 500).unref();
        },
      );
    }
  }
}
