/**
 * Which orgs' usage, balance or limits changed, for the pages that show them live. One watcher per
 * database reads a fingerprint of every watched org once a tick, in one query, and calls the listeners
 * of each org whose fingerprint moved. Reading the database, rather than being told by the writer, keeps
 * it right whichever Tally process wrote, on PGlite and on a Postgres server alike, and adds nothing to
 * the ingest path. The watcher only runs while someone listens.
 */
import { MAX_EVENT_AGE_MS } from '../../domain/usageEvent.ts';
import type { Db } from '../../store/db.ts';

export const WATCH_TICK_MS = 1000;

/**
 * The org's balance row (every charge, hold, grant and payment), its usage count from the daily
 * rollup (every event of any billing mode, kept in the ingest transaction) and its limits. Only the
 * days the API still accepts events for are counted (read through the primary key), so a tick costs
 * the same however long the org's history: an operator's import of older history changes no
 * live page until the next reload.
 */
const FINGERPRINTS = `
SELECT w.org_id,
       concat_ws(':', b.granted, b.consumed, b.expired, b.held, b.overage,
         (SELECT coalesce(sum(d.calls), 0) FROM usage_daily_dim d
           WHERE d.org_id = w.org_id AND d.dimension = 'all' AND d.bucket >= $2),
         l.alert_threshold, l.allowed_limit) AS fingerprint
  FROM unnest($1::text[]) AS w(org_id)
  LEFT JOIN org_balances b ON b.org_id = w.org_id
  LEFT JOIN org_limits l ON l.org_id = w.org_id`;

/** A local day starts at most this long before its events (14 hours of zone offset, DST, margin). */
const DAY_LEAD_MS = 2 * 86_400_000;

/** What the watcher compares from one tick to the next, for each org. */
export const readOrgFingerprints = (db: Db, orgIds: string[], now = Date.now()) =>
  db.query<{ org_id: string; fingerprint: string }>(FINGERPRINTS, [
    orgIds,
    new Date(now - MAX_EVENT_AGE_MS - DAY_LEAD_MS).toISOString(),
  ]);

export interface Listener {
  /** The org's figures changed. */
  changed(): void;
  /** The process is stopping: let go of the response. */
  ended(): void;
}

class OrgChangeWatcher {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly seen = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private reading = false;

  constructor(private readonly db: Db) {}

  /** Resolves once the org's fingerprint is known: changes from then on reach the listener. */
  async subscribe(orgId: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(orgId);
    if (!set) {
      set = new Set();
      this.listeners.set(orgId, set);
    }
    set.add(listener);
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), WATCH_TICK_MS);
      // Listeners keep their HTTP responses open; the timer alone keeps no process alive.
      this.timer.unref();
    }
    const unsubscribe = () => {
      set.delete(listener);
      if (set.size === 0) {
        this.listeners.delete(orgId);
        this.seen.delete(orgId);
      }
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
    if (!this.seen.has(orgId)) {
      try {
        const [row] = await this.read([orgId]);
        if (row && !this.seen.has(orgId)) this.seen.set(orgId, row.fingerprint);
      } catch (error) {
        unsubscribe();
        throw error;
      }
    }
    return unsubscribe;
  }

  /** Ends every listener, for a process that stops (its HTTP server waits for open responses). */
  endAll(): void {
    for (const set of this.listeners.values()) for (const listener of set) listener.ended();
  }

  private read(orgIds: string[]) {
    return readOrgFingerprints(this.db, orgIds);
  }

  private async tick(): Promise<void> {
    // A slow read is not stacked on by the next tick.
    if (this.reading || this.listeners.size === 0) return;
    this.reading = true;
    try {
      const rows = await this.read([...this.listeners.keys()]);
      for (const { org_id, fingerprint } of rows) {
        const before = this.seen.get(org_id);
        this.seen.set(org_id, fingerprint);
        if (before === undefined || before === fingerprint) continue;
        for (const listener of this.listeners.get(org_id) ?? []) listener.changed();
      }
    } catch {
      // The database is away for a moment: the next tick reads again; listeners see nothing change.
    } finally {
      this.reading = false;
    }
  }
}

const watchers = new WeakMap<Db, OrgChangeWatcher>();

/**
 * Tells `listener` of each change to the org's figures from the moment the promise resolves, until
 * the function it resolves to is called.
 */
export function onOrgChange(db: Db, orgId: string, listener: Listener): Promise<() => void> {
  let watcher = watchers.get(db);
  if (!watcher) {
    watcher = new OrgChangeWatcher(db);
    watchers.set(db, watcher);
  }
  return watcher.subscribe(orgId, listener);
}

/** Ends every live response on this database: called before the HTTP server closes. */
export function endOrgWatches(db: Db): void {
  watchers.get(db)?.endAll();
}
