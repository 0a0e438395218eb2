/**
 * Breakdowns by feature, member, model, provider, workspace, workspace group, surface (web, CLI,
 * integrations), project, API key, integration (the surface of calls made through one, 'None' for
 * the product's own surfaces) or tool (`metadata.tool` of the events): credits, cost, calls, tokens and share of the total, ranked by
 * what the org pays in (credits; USD for BYOM; tokens for BYOK), keyset-paginated so a page can
 * show the top 5 and then "show all".
 *
 * Read from the narrow rollup of the dimension (or the wide one, or raw events for the tool, under
 * other filters; see source.ts).
 * Shares are decimal fractions with 4 places, allocated over all groups by largest remainder in
 * SQL, so they always add up to exactly 1 (0 when nothing was spent); the rows add up to `total`.
 *
 * "Show more" walks one ranking while usage keeps coming in. The first page pins its instant (the
 * range resolves at it on every page) and the usage it counted; every later page ranks that same
 * usage. The rollups keep no record time, so a later page reads them as they are now and takes
 * back out the events recorded since: those dated in the range's recent part (from the hour before
 * the first page's hour on: RECENT_MS), found in raw events by `seq` above the highest the first
 * page saw there (the cursor carries it). Older hours are not searched (no index finds events by
 * `seq`): the cursor carries the org's calls before and in the recent part as the first page
 * counted them, and a later page whose counts, less the events taken out, differ is refused with
 * 409 `cursor_stale` naming `cursor` (the client loads the first page again). That happens when an
 * event dated before the recent part arrived late since the first page, or when an ingest still
 * open while the first page was read committed after it.
 *
 * The guarantee, exactly: for the same query (`by`, filters and range; any `limit`) of an org whose
 * time zone, billing cycle and billing mode stay as they were, a page read with a cursor holds
 * either exactly the next rows of the first page's ranking, with the first page's figures, shares,
 * `groups` and `total`, or nothing but that 409: no row is ever skipped or shown twice. The cursor
 * carries fingerprints of both: a cursor sent with another query is refused with 400
 * `invalid_cursor`, one whose org changed its zone, cycle or billing mode with 409 `cursor_stale`.
 */
import { createHash } from 'node:crypto';
import { formatUnits } from '../../domain/money.ts';
import { floorHour } from '../../domain/ranges.ts';
import { SUM_NAMES, zeroTotals } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { type CursorPart, decodeCursor, encodeCursor } from '../pagination.ts';
import { errorCodeSql, failedSql, failuresView } from './failures.ts';
import {
  DIMENSION_KEY,
  type Dimension,
  figuresView,
  labelsFor,
  loadScope,
  placeholderFor,
  rangeView,
  SUM_COLUMNS,
  type SumRow,
  toolSql,
  totalsOf,
  type UsageQuery,
  weightSql,
  whereOf,
} from './scope.ts';
import { planOf, sourceSql, wideRows } from './source.ts';

const SHARE_SCALE = 4;
const SHARE_UNITS = 10n ** BigInt(SHARE_SCALE);

export interface BreakdownQuery extends UsageQuery {
  by: Dimension;
  limit: number;
  cursor?: string | undefined;
}

type GroupRow = SumRow & {
  key: string;
  failed: string;
  top_error: string | null;
  weight_text: string;
  share_units: string;
  groups: string;
  total_calls: string;
  total_credits: string;
  total_cost: string;
  total_provider_cost_usd: string;
  /** What the walk pins (see `pinned`): three integers. */
  pinned: string | null;
};

/** A cursor: where the last page ended, and what the first page pinned (see the head of this file). */
interface Walk {
  at: Date;
  /** The org's calls before and in the recent part, and the highest `seq` in it, at the first page. */
  before: bigint;
  recent: bigint;
  seq: bigint;
  weight: string;
  key: string;
  /** Fingerprints of the query and of the org settings it resolved with, at the first page. */
  query: string;
  org: string;
}
const CURSOR: CursorPart[] = ['time', 'integer', 'integer', 'integer', 'digits', 'text', 'text', 'text'];
/** Cursors handed out before they carried fingerprints (six parts) or pinned their first page (two). */
const EARLIER_CURSORS: CursorPart[][] = [
  ['time', 'integer', 'integer', 'integer', 'digits', 'text'],
  ['digits', 'text'],
];

/** What a cursor must have been made for: every field of the query but its page size and cursor. */
function queryPrint(query: BreakdownQuery): string {
  const { limit: _limit, cursor: _cursor, ...asked } = query;
  const fields = Object.entries(asked)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return fingerprint(fields);
}

/** The org settings a range and a ranking resolve with. */
const orgPrint = (org: OrgRow) => fingerprint([org.timezone, org.billing_cycle_anchor, org.billing_mode]);

const fingerprint = (value: unknown) =>
  createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 16);

/** The cursor of a page that must be read again from the first: its usage changed under it. */
const staleCursor = (why: string) =>
  new ServiceError(409, 'cursor_stale', `${why}: load the first page again`, 'cursor');

function walkOf(cursor: string | undefined): Walk | null {
  let parts: (string | number)[] | null;
  try {
    parts = decodeCursor(cursor, CURSOR);
  } catch (error) {
    // A cursor an earlier version of Tally handed out was valid: it is stale, not the client's error.
    const earlier = EARLIER_CURSORS.some((form) => {
      try {
        return decodeCursor(cursor, form) !== null;
      } catch {
        return false;
      }
    });
    if (!earlier) throw error;
    throw staleCursor('This cursor was handed out by an earlier version of Tally');
  }
  if (!parts) return null;
  const [at, before, recent, seq, weight, key, query, org] = parts.map(String);
  return {
    at: new Date(at!),
    before: BigInt(before!),
    recent: BigInt(recent!),
    seq: BigInt(seq!),
    weight: weight!,
    key: key!,
    query: query!,
    org: org!,
  };
}

/** The recent part of a walk starts this long before the hour of its first page. */
const RECENT_MS = 3_600_000;

export async function getUsageBreakdown(ctx: Ctx, orgId: string, query: BreakdownQuery, now = new Date()) {
  const walk = walkOf(query.cursor);
  const at = walk?.at ?? now;
  const scope = await loadScope(ctx, orgId, query, at);
  const prints = { query: queryPrint(query), org: orgPrint(scope.org) };
  if (walk && walk.query !== prints.query) {
    throw new ServiceError(
      400,
      'invalid_cursor',
      'The cursor was handed out for another query (by, range or filters differ): send it with the query of its first page',
      'cursor',
    );
  }
  if (walk && walk.org !== prints.org) {
    throw staleCursor("The org's time zone, billing cycle or billing mode changed since the first page");
  }
  const { start, end } = scope.range;
  const recent = new Date(
    Math.min(Math.max(floorHour(at).getTime() - RECENT_MS, start.getTime()), end.getTime()),
  );
  const params: unknown[] = [];
  const p = placeholderFor(params);
  const src = await sourceSql(
    ctx.db.read,
    planOf(query.by, query),
    orgId,
    query.by,
    [start, end],
    query,
    params,
  );
  const seen = walk ? p(walk.seq.toString()) : '';
  // A later page takes back out the events of the recent part recorded since the first page.
  const since = walk
    ? `UNION ALL
       SELECT ${DIMENSION_KEY[query.by]} AS key, ${SUM_NAMES.split(', ')
         .map((c) => `-${c} AS ${c}`)
         .join(', ')}
         FROM ${wideRows(orgId, { start: recent, end }, query, params, true)} AS w WHERE w.seq > ${seen}`
    : '';
  const org = p(orgId);
  const lo = p(recent.toISOString());
  const to = p(end.toISOString());
  // What the walk pins, read with the ranking (one snapshot): the org's calls before and in the
  // recent part, and there the highest seq (a first page, only when it has a next one) or how
  // many events were recorded since (a later page).
  const pinned = `(SELECT concat_ws(' ', coalesce(sum(calls) FILTER (WHERE bucket < ${lo}), 0),
                                   coalesce(sum(calls) FILTER (WHERE bucket >= ${lo}), 0),
                                   (SELECT ${walk ? 'count(*)' : 'coalesce(max(seq), 0)'} FROM events e
                                     WHERE e.org_id = ${org} AND e.occurred_at >= ${lo} AND e.occurred_at < ${to}
                                       ${walk ? `AND e.seq > ${seen}` : ''}))
                      FROM usage_hourly_total
                     WHERE org_id = ${org} AND bucket >= ${p(start.toISOString())} AND bucket < ${to})`;
  const after = p(walk?.weight ?? null);
  const failedWhere = `${whereOf('events', orgId, { start, end }, query, params)} AND ${failedSql('e.metadata')}`;
  const rows = await ctx.db.read.query<GroupRow>(
    `WITH f AS (
       SELECT ${query.by === 'tool' ? toolSql('e.metadata') : DIMENSION_KEY[query.by]} AS key, count(*) AS failed,
              mode() WITHIN GROUP (ORDER BY ${errorCodeSql('e.metadata')}) AS top_error
         FROM events e WHERE ${failedWhere} GROUP BY 1
     ), u AS (
       SELECT key, ${SUM_NAMES} FROM ${src} AS s
       ${since}
     ), g AS (
       SELECT key, ${SUM_COLUMNS}, sum(${weightSql(scope.unit)}) AS weight
         FROM u GROUP BY 1 HAVING sum(calls) <> 0
     ), s AS (
       SELECT g.*, sum(weight) OVER () AS total, count(*) OVER () AS groups,
              sum(calls::bigint) OVER () AS total_calls, sum(credits::bigint) OVER () AS total_credits,
              sum(cost::numeric) OVER () AS total_cost,
              sum(provider_cost_usd::numeric) OVER () AS total_provider_cost_usd
         FROM g
     ), a AS (
       SELECT s.*, CASE WHEN total > 0 THEN div(weight * ${SHARE_UNITS}, total) ELSE 0 END AS base,
              CASE WHEN total > 0 THEN mod(weight * ${SHARE_UNITS}, total) ELSE 0 END AS rest
         FROM s
     ), r AS (
       SELECT a.*, row_number() OVER (ORDER BY rest DESC, weight DESC, key) AS rn,
              CASE WHEN total > 0 THEN ${SHARE_UNITS} - sum(base) OVER () ELSE 0 END AS missing
         FROM a
     )
     SELECT key, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, round(weight)::text AS weight_text, groups::text AS groups,
            (base + CASE WHEN rn <= missing THEN 1 ELSE 0 END)::text AS share_units,
            total_calls::text AS total_calls, total_credits::text AS total_credits,
            total_cost::text AS total_cost, total_provider_cost_usd::text AS total_provider_cost_usd,
            ${walk ? pinned : `CASE WHEN groups > ${query.limit} THEN ${pinned} END`} AS pinned,
            coalesce((SELECT f.failed FROM f WHERE f.key = r.key), 0)::text AS failed,
            (SELECT f.top_error FROM f WHERE f.key = r.key) AS top_error
       FROM r
      WHERE ${after}::numeric IS NULL OR weight < ${after}::numeric
         OR (weight = ${after}::numeric AND key > ${p(walk?.key ?? null)})
      ORDER BY weight DESC, key ASC
      LIMIT ${p(query.limit + 1)}`,
    params,
  );
  // A later page holds at least one row (the page before it had a next one), read as the first
  // page counted: its calls before the recent part, and in it less those recorded since.
  const [before, inRecent, seq] = (rows[0]?.pinned?.split(' ') ?? []).map(BigInt);
  if (walk && !(before === walk.before && inRecent! - seq! === walk.recent)) {
    throw staleCursor(
      'Usage this page cannot leave out arrived since the first page (an event dated over an hour before it)',
    );
  }
  const has_more = rows.length > query.limit;
  const kept = has_more ? rows.slice(0, query.limit) : rows;
  const labels = await labelsFor(
    ctx.db.read,
    orgId,
    query.by,
    kept.map((r) => r.key),
  );
  const last = kept[kept.length - 1];
  // The totals ride on every group row (a cursor this API hands out never points past the last).
  const totalRow = rows[0];
  const total = totalRow
    ? totalsOf({
        ...totalRow,
        calls: totalRow.total_calls,
        credits: totalRow.total_credits,
        cost: totalRow.total_cost,
        provider_cost_usd: totalRow.total_provider_cost_usd,
      })
    : zeroTotals();
  const totalView = figuresView(total, scope.operator);
  return {
    object: 'usage_breakdown' as const,
    org_id: orgId,
    by: query.by,
    range: rangeView(scope.range),
    unit: scope.unit,
    currency: scope.currency,
    groups: totalRow ? Number(totalRow.groups) : 0,
    total: {
      credits: totalView.credits,
      cost: totalView.cost,
      provider_cost_usd: totalView.provider_cost_usd,
      calls: totalView.calls,
    },
    data: kept.map((r) => {
      const l = labels.get(r.key) ?? { label: r.key };
      return {
        key: r.key,
        label: l.label,
        ...(l.provider !== undefined ? { provider: l.provider } : {}),
        ...(l.email !== undefined ? { email: l.email } : {}),
        ...figuresView(totalsOf(r), scope.operator),
        share: formatUnits(BigInt(r.share_units), SHARE_SCALE),
        ...failuresView(BigInt(r.failed), BigInt(r.calls), r.top_error),
      };
    }),
    has_more,
    next_cursor:
      has_more && last
        ? encodeCursor([
            at.toISOString(),
            ...(walk ? [walk.before, walk.recent, walk.seq] : [before!, inRecent!, seq!]).map(String),
            last.weight_text,
            last.key,
            prints.query,
            prints.org,
          ])
        : null,
  };
}
export type UsageBreakdown = Awaited<ReturnType<typeof getUsageBreakdown>>;
