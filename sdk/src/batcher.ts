/**
 * The in-memory queue behind `track()`: events leave in batches when `batchSize` are waiting or
 * `flushIntervalMs` after the first one arrived, whichever comes first. A batch keeps its events
 * (and so their ids) through every retry, so a batch the server counted before the connection
 * dropped comes back as `duplicate`, never as a second count.
 */
import { TallyError } from './errors.ts';
import type { EventResult, IngestAnswer, UsageEvent } from './types.ts';

/** The most events one POST /v1/events takes. */
export const MAX_BATCH_SIZE = 1000;

export interface FailedBatch {
  events: UsageEvent[];
  error: unknown;
}

/** What a flush did: Tally's answer for every event it delivered, and the batches it gave up on. */
export interface FlushReport {
  results: EventResult[];
  failed: FailedBatch[];
}

export interface BatcherOptions {
  batchSize: number;
  flushIntervalMs: number;
  send: (events: UsageEvent[]) => Promise<IngestAnswer>;
  /**
   * Told about every batch that could not be delivered (a 4xx, or retries exhausted), and about
   * each event Tally refused by name (a batch of that one event; the others are delivered).
   */
  onError: (failure: FailedBatch) => void;
}

export class EventBatcher {
  private pending: UsageEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly inFlight = new Set<Promise<FlushReport>>();

  constructor(private readonly options: BatcherOptions) {
    if (!(options.batchSize >= 1 && options.batchSize <= MAX_BATCH_SIZE)) {
      throw new RangeError(`batchSize must be between 1 and ${MAX_BATCH_SIZE}`);
    }
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  add(event: UsageEvent): void {
    this.pending.push(event);
    if (this.pending.length >= this.options.batchSize) {
      this.sendPending();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.sendPending(), this.options.flushIntervalMs);
      // In Node, a waiting batch alone should not keep the process alive; shutdown() flushes it.
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /** Sends everything pending and waits for every batch in flight, those already sent included. */
  async flush(): Promise<FlushReport> {
    this.sendPending();
    const reports = await Promise.all([...this.inFlight]);
    return {
      results: reports.flatMap((r) => r.results),
      failed: reports.flatMap((r) => r.failed),
    };
  }

  private sendPending(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.options.batchSize);
      const sending = this.deliver(batch).finally(() => this.inFlight.delete(sending));
      this.inFlight.add(sending);
    }
  }

  /**
   * Sends a batch. Tally refuses a whole batch for one event it names (`events[3].usage...` in a
   * 422, `events[3].org_id` in a 404 for an org it does not know): that event alone is given up on
   * and reported, and the rest is sent again, so one bad event never costs its batch. A batch over
   * Tally's body limit (413, a server setting) is sent again in halves, down to single events.
   */
  private async deliver(events: UsageEvent[]): Promise<FlushReport> {
    const failed: FailedBatch[] = [];
    let left = events;
    while (left.length > 0) {
      try {
        const answer = await this.options.send(left);
        return { results: answer.results, failed };
      } catch (error) {
        if (tooLarge(error) && left.length > 1) {
          const half = Math.ceil(left.length / 2);
          const first = await this.deliver(left.slice(0, half));
          const second = await this.deliver(left.slice(half));
          return {
            results: [...first.results, ...second.results],
            failed: [...failed, ...first.failed, ...second.failed],
          };
        }
        const bad = refusedEvent(error, left.length);
        const failure = { events: bad === null ? left : [left[bad]!], error };
        this.options.onError(failure);
        failed.push(failure);
        if (bad === null) break;
        left = left.filter((_, i) => i !== bad);
      }
    }
    return { results: [], failed };
  }
}

const tooLarge = (error: unknown) => error instanceof TallyError && error.status === 413;

/** The position of the event a refusal (a 4xx) names in its `param`, when it names one of the batch. */
function refusedEvent(error: unknown, size: number): number | null {
  if (!(error instanceof TallyError) || error.status < 400 || error.status >= 500) return null;
  const at = error.param?.match(/^events\[(\d+)\]/);
  const index = at ? Number(at[1]) : -1;
  return index >= 0 && index < size ? index : null;
}
