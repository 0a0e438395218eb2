/**
 * The usage overview: period, member filter, KPIs, allowance, cycle, charts, breakdowns (by tool and
 * integration among them), files, conversations, activity, insights.
 *
 * The host app chooses the period tabs in the page URL's query (or an embed link's fragment):
 * `periods` lists the tabs to show, in order, comma-separated (24h, 7d, 30d, this_month, this_cycle,
 * last_month, custom; the API's range names 1d, mtd and cycle work too), and `period` the one selected
 * (else the first of `periods`, else 30 days). Unknown names are ignored; none left, the default tabs
 * show. The tab and user (`member`) the reader picks are written back to the query, so a reload keeps them,
 * and kept for the app's links back to the overview (session.ts `overviewHref`).
 */
import { type KeyboardEvent, useEffect, useMemo, useState } from 'react';
import { type Query, saveBlob, withQuery } from '../api.ts';
import { ActivityTable } from '../components/Activity.tsx';
import { AllowanceBar, CycleCards } from '../components/Allowance.tsx';
import { FeaturePills, MemberShares, ModelBars, TopTable, useBreakdown } from '../components/Breakdowns.tsx';
import { ConversationsPanel } from '../components/Conversations.tsx';
import { FilesPanel } from '../components/Files.tsx';
import {
  AnomaliesPanel,
  ForecastPanel,
  PatternsPanel,
  RecommendationsPanel,
} from '../components/Insights.tsx';
import { Await, ErrorNote, Panel } from '../components/states.tsx';
import { CumulativeChart, SurfaceChart } from '../components/UsageCharts.tsx';
import { useOrgChanges } from '../live.ts';
import { memberLabel } from '../members.ts';
import { Link, replaceQuery, useLocation } from '../router.tsx';
import { keepOverviewQuery } from '../session.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Balance, Limits, Member, Org, Summary, UsageRange } from '../types.ts';
import { moneyNote, spendText } from '../units.ts';
import { useApi } from '../useApi.ts';
import { usePagedList } from '../usePagedList.ts';
import { TopUpButton } from './Payments.tsx';

/** The period tabs: the name a URL gives each, the API range it shows, its label. */
const PERIODS = [
  { name: '24h', range: '1d', label: '24 hours' },
  { name: '7d', range: '7d', label: '7 days' },
  { name: '30d', range: '30d', label: '30 days' },
  { name: 'this_month', range: 'mtd', label: 'This month' },
  { name: 'this_cycle', range: 'cycle', label: 'This cycle' },
  { name: 'last_month', range: 'last_month', label: 'Last month' },
  { name: 'custom', range: 'custom', label: 'Custom' },
] as const;
type Period = (typeof PERIODS)[number];
const DEFAULT_PERIOD = PERIODS[2];

/**
 * The periods offered when the host app chose none: "This cycle" only when the org's billing cycle
 * starts on another day than the 1st (otherwise it is "This month" twice).
 */
function defaultPeriods(org: Org): readonly Period[] {
  const cycleIsMonth = org.billing_cycle_anchor.endsWith('-01');
  return cycleIsMonth ? PERIODS.filter(({ range }) => range !== 'cycle') : PERIODS;
}

/** The period a URL names, by its own name or the API range it shows. */
const periodNamed = (name: string | null) => PERIODS.find((p) => p.name === name || p.range === name);

/** The tabs and the selected period the page URL asks for (see the top of this file). */
function periodsChosen(query: URLSearchParams, org: Org): { tabs: readonly Period[]; selected: Period } {
  const named = (query.get('periods') ?? '').split(',').map((name) => periodNamed(name.trim()));
  const chosen = [...new Set(named)].filter((period) => period !== undefined);
  const tabs = chosen.length > 0 ? chosen : defaultPeriods(org);
  const asked = periodNamed(query.get('period'));
  return { tabs, selected: asked && tabs.includes(asked) ? asked : (chosen[0] ?? DEFAULT_PERIOD) };
}

/** The overview's choices in its query (the rest, such as a cache-busting `_`, is not kept). */
function keptChoices(query: URLSearchParams): string {
  const kept = new URLSearchParams();
  for (const name of ['periods', 'period', 'member', 'from', 'to']) {
    const value = query.get(name);
    if (value) kept.set(name, value);
  }
  return kept.toString();
}

/** Live updates: the figures reload when the org's usage changes, at most this often. */
const LIVE_RELOAD_MIN_MS = 5000;
/**
 * The stream opens this long after the overview: its ~20 first API calls then have the browser's
 * connections and the server to themselves (opened at once, the first full render of the demo org
 * took about 0.3 s longer in back-to-back bench runs).
 */
const LIVE_START_MS = 3000;

export function OverviewScreen() {
  const { org } = useOrg();
  const address = useLocation();
  const { tabs, selected } = useMemo(() => periodsChosen(address.searchParams, org), [address, org]);
  const period = selected.range;
  const member = address.searchParams.get('member') ?? '';
  useEffect(() => keepOverviewQuery(keptChoices(address.searchParams)), [address]);
  // A custom range's dates live in the URL, so a reload or a shared link keeps them.
  const from = address.searchParams.get('from') ?? '';
  const to = address.searchParams.get('to') ?? '';
  const custom = useMemo(() => ({ from, to }), [from, to]);
  const setCustom = (dates: { from: string; to: string }) => replaceQuery(dates);
  // Refresh reloads everything; a pushed change reloads everything but the lists being paged through.
  const [refreshes, setRefreshes] = useState(0);
  const [live, setLive] = useState(0);
  const generation = refreshes + live;
  useOrgChanges(org.id, () => setLive((n) => n + 1), {
    throttleMs: LIVE_RELOAD_MIN_MS,
    startAfterMs: LIVE_START_MS,
    catchUpAtStart: false,
  });
  const customReady =
    period !== 'custom' || (custom.from !== '' && custom.to !== '' && custom.from <= custom.to);
  const listQuery: Query = useMemo(
    () => ({
      range: period,
      from: period === 'custom' ? custom.from : undefined,
      to: period === 'custom' ? custom.to : undefined,
      member,
      // Changes on Refresh, so every panel asks again.
      _: refreshes || undefined,
    }),
    [period, custom, member, refreshes],
  );
  const query: Query = useMemo(() => ({ ...listQuery, _: generation || undefined }), [listQuery, generation]);

  return (
    <div className="overview" key={org.id}>
      {/* BYOK: nothing to pick a period of, filter or export; the body says why. */}
      {org.billing_mode !== 'byok' && (
        <div className="toolbar">
          <PeriodTabs
            periods={tabs}
            period={selected}
            onChange={(tab) => replaceQuery({ period: tab.name })}
          />
          {period === 'custom' && (
            <div className="custom-range">
              <label>
                From{' '}
                <input
                  type="date"
                  value={custom.from}
                  onChange={(e) => setCustom({ ...custom, from: e.target.value })}
                />
              </label>
              <label>
                To{' '}
                <input
                  type="date"
                  value={custom.to}
                  onChange={(e) => setCustom({ ...custom, to: e.target.value })}
                />
              </label>
              {!customReady && custom.from && custom.to && (
                <span className="field-error" role="alert">
                  The start must not be after the end.
                </span>
              )}
            </div>
          )}
          <MemberFilter value={member} onChange={(id) => replaceQuery({ member: id })} />
          <button type="button" className="secondary" onClick={() => setRefreshes((n) => n + 1)}>
            Refresh
          </button>
          <ExportButtons query={query} />
        </div>
      )}
      {customReady ? (
        <OverviewBody query={query} listQuery={listQuery} live={live} generation={generation} />
      ) : (
        // Dates in the wrong order are named by the toolbar's own message.
        (!custom.from || !custom.to) && <p className="empty">Pick a start and an end date.</p>
      )}
    </div>
  );
}

/** The period tabs, keyboard-operable as a tab list: arrows move between periods, Tab leaves the list. */
function PeriodTabs({
  periods,
  period,
  onChange,
}: {
  periods: readonly Period[];
  period: Period;
  onChange(period: Period): void;
}) {
  const move = (event: KeyboardEvent<HTMLDivElement>) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    event.preventDefault();
    // From the focused tab (the pattern's rule), which is the selected one unless clicked elsewhere.
    const focused = (event.target as HTMLElement).dataset.period ?? period.name;
    const index = periods.findIndex(({ name }) => name === focused);
    const next = periods[(index + step + periods.length) % periods.length]!;
    onChange(next);
    event.currentTarget.querySelector<HTMLButtonElement>(`[data-period="${next.name}"]`)?.focus();
  };
  return (
    <div className="tabs" role="tablist" aria-label="Period" onKeyDown={move}>
      {periods.map((tab) => (
        <button
          key={tab.name}
          type="button"
          role="tab"
          data-period={tab.name}
          aria-selected={period === tab}
          tabIndex={period === tab ? 0 : -1}
          className={period === tab ? 'tab active' : 'tab'}
          onClick={() => onChange(tab)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  );
}

/** Members a page loads at a time. */
const MEMBERS_PAGE = 100;

/** The user filter. Beyond the first page, members load when the list is first focused. */
function MemberFilter({ value, onChange }: { value: string; onChange(id: string): void }) {
  const { org } = useOrg();
  const members = usePagedList<Member>(`/v1/orgs/${org.id}/members`, { limit: MEMBERS_PAGE });
  const [wanted, setWanted] = useState(false);
  const { hasMore, more, loadMore } = members;
  useEffect(() => {
    if (wanted && hasMore && !more.loading && !more.error) loadMore();
  }, [wanted, hasMore, more, loadMore]);
  return (
    <div className="inline">
      <label htmlFor="member-filter">User</label>
      <select
        id="member-filter"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        onFocus={() => setWanted(true)}
        disabled={!members.first.data}
      >
        <option value="">All users</option>
        {members.rows.map((m) => (
          <option key={m.id} value={m.id}>
            {memberLabel(m)}
            {m.status === 'removed' ? ' (removed)' : ''}
          </option>
        ))}
        {hasMore && wanted && <option disabled>Loading more users…</option>}
      </select>
      {more.error && <ErrorNote error={more.error} retry={loadMore} />}
    </div>
  );
}

function ExportButtons({ query }: { query: Query }) {
  const { api, org } = useOrg();
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState('');
  const download = async (format: 'csv' | 'json' | 'pdf') => {
    setBusy(format);
    setError(null);
    try {
      saveBlob(await api.download(`/v1/orgs/${org.id}/usage/export`, { ...query, format }));
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy('');
    }
  };
  return (
    <fieldset className="exports">
      <legend className="sr-only">Export</legend>
      {(['csv', 'json', 'pdf'] as const).map((format) => (
        <button
          key={format}
          type="button"
          className="secondary"
          onClick={() => download(format)}
          disabled={busy !== ''}
        >
          {busy === format ? 'Exporting…' : `Export ${format.toUpperCase()}`}
        </button>
      ))}
      {error && <ErrorNote error={error} />}
    </fieldset>
  );
}

function OverviewBody({
  query,
  listQuery,
  live,
  generation,
}: {
  query: Query;
  /** The query of the paged lists, without the live changes (they follow `live` themselves). */
  listQuery: Query;
  live: number;
  generation: number;
}) {
  const { org } = useOrg();
  if (org.billing_mode === 'byok') return <ByokNotice query={query} />;
  return (
    <>
      <Headline query={query} />
      <AllowancePanel generation={generation} />
      <div className="grid two">
        <CumulativeChart query={query} />
        <SurfaceChart query={query} />
      </div>
      <div className="grid three">
        <FeaturePills query={query} />
        <MemberShares query={listQuery} live={live} />
        <ModelBars query={query} />
      </div>
      <div className="grid three">
        <TopTable by="workspace" query={listQuery} live={live} />
        <TopTable by="workspace_group" query={listQuery} live={live} />
        <TopTable by="member" query={listQuery} live={live} />
      </div>
      {/* Each card shows only when some usage names a tool or an integration. */}
      <div className="grid two">
        <TopTable by="tool" query={listQuery} live={live} />
        <TopTable by="integration" query={listQuery} live={live} />
      </div>
      <FilesPanel query={listQuery} live={live} />
      <DailyBreakdown query={query} />
      <ConversationsPanel query={listQuery} live={live} />
      <ActivityTable query={listQuery} live={live} />
      <div className="grid two">
        <ForecastPanel />
        <AnomaliesPanel />
      </div>
      <div className="grid two">
        <RecommendationsPanel query={query} />
        <PatternsPanel query={query} />
      </div>
    </>
  );
}

/**
 * The period's key figures, or word that it has no usage yet. A component of its own, first in
 * the page: React starts a parent's requests after its children's, so asked for by the page they
 * came last and the figures at the top showed after everything below them.
 */
function Headline({ query }: { query: Query }) {
  const { org } = useOrg();
  const summary = useApi<Summary>(`/v1/orgs/${org.id}/usage/summary`, query);
  return (
    <>
      <Await loaded={summary} what="the summary">
        {(s) => <KpiCards summary={s} />}
      </Await>
      {summary.data && summary.data.calls === 0 && query.range !== '1d' && (
        <p className="empty">
          No usage yet in this period. When your apps send usage it shows up here within seconds.
        </p>
      )}
    </>
  );
}

const DAY_MS = 86_400_000;

/**
 * What the trend pill compares against, in words; the period itself comes from the API
 * (range.previous_start and previous_end, src/domain/ranges.ts): rolling ranges against the span
 * just before them, this month and this cycle so far against the same days of the previous one.
 * Null for last month: the pill is about the period in progress.
 */
function trendComparison(range: UsageRange): { against: string; explained: string } | null {
  const rolling = (span: string) => ({
    against: `vs previous ${span}`,
    explained: `Against the ${span} just before this period`,
  });
  switch (range.name) {
    case '1d':
      return rolling('24 hours');
    case '7d':
      return rolling('7 days');
    case '30d':
      return rolling('30 days');
    case 'mtd':
      return { against: 'vs last month', explained: 'This month so far against the same days of last month' };
    case 'cycle':
      return {
        against: 'vs last cycle',
        explained: 'This cycle so far against the same days of the last cycle',
      };
    case 'last_month':
      return null;
    default: {
      // Custom ranges are whole local days (rounded: a day with a clock change is 23 or 25 hours).
      const days = Math.round((Date.parse(range.previous_end) - Date.parse(range.previous_start)) / DAY_MS);
      return rolling(days === 1 ? 'day' : `${days} days`);
    }
  }
}

function TrendPill({ summary }: { summary: Summary }) {
  const { formats } = useOrg();
  const comparison = trendComparison(summary.range);
  if (!comparison) return null;
  const { previous_start, previous_end } = summary.range;
  return (
    <dd>
      <span
        className={`trend trend-${summary.trend.direction}`}
        title={`${comparison.explained}: ${formats.dateTime(previous_start)} to ${formats.dateTime(previous_end)}`}
        data-testid="kpi-trend"
      >
        {summary.trend.label} {comparison.against}
      </span>
    </dd>
  );
}

function KpiCards({ summary }: { summary: Summary }) {
  const { formats } = useOrg();
  const note = moneyNote(formats, summary.unit, summary, summary.currency);
  return (
    <dl className="cards kpis" aria-live="polite">
      <div className="card">
        <dt>Total spent</dt>
        <dd data-testid="kpi-spent">{spendText(formats, summary.unit, summary)}</dd>
        {note && (
          <dd className="muted" data-testid="kpi-money">
            {note}
          </dd>
        )}
        <TrendPill summary={summary} />
      </div>
      <div className="card">
        <dt>Calls</dt>
        <dd data-testid="kpi-calls">{formats.count(summary.calls)}</dd>
        {summary.failed_calls > 0 && (
          <dd className="muted" data-testid="kpi-failed">
            {formats.count(summary.failed_calls)} failed ({formats.percent(summary.error_rate)})
          </dd>
        )}
      </div>
      <div className="card">
        <dt>Tokens</dt>
        <dd data-testid="kpi-tokens">{formats.count(summary.tokens.total)}</dd>
        <dd className="muted">
          {formats.tokens(summary.tokens.input)} in · {formats.tokens(summary.tokens.output)} out
        </dd>
      </div>
      <div className="card">
        <dt>Active members</dt>
        <dd data-testid="kpi-members">{formats.count(summary.active_members)}</dd>
      </div>
      <div className="card">
        <dt>Features</dt>
        <dd>{formats.count(summary.features)}</dd>
      </div>
      <div className="card">
        <dt>Model tiers</dt>
        <dd>{formats.count(summary.model_tiers)}</dd>
      </div>
    </dl>
  );
}

function AllowancePanel({ generation }: { generation: number }) {
  const { org, can } = useOrg();
  const balance = useApi<Balance>(`/v1/orgs/${org.id}/balance`, { _: generation || undefined });
  const limits = useApi<Limits>(`/v1/orgs/${org.id}/limits`, { _: generation || undefined });
  const failed = balance.error ?? limits.error;
  return (
    <Panel
      title={org.billing_mode === 'byom' ? 'Spend this cycle (USD)' : 'Credits this cycle'}
      actions={
        <>
          {can('limits:write') && (
            <Link className="button secondary" href="/usage/limits">
              Configure limits
            </Link>
          )}
          {org.billing_mode === 'credits' && <TopUpButton />}
        </>
      }
    >
      {failed ? (
        <ErrorNote
          error={failed}
          retry={() => {
            balance.reload();
            limits.reload();
          }}
        />
      ) : balance.data && limits.data ? (
        <>
          <AllowanceBar balance={balance.data} limits={limits.data} />
          <CycleCards balance={balance.data} />
        </>
      ) : (
        <p className="loading">Loading the balance…</p>
      )}
    </Panel>
  );
}

interface Daily {
  month: string;
  unit: Summary['unit'];
  currency: string;
  data: { date: string; credits: string; cost: string; calls: number }[];
}

/**
 * The month whose days the daily breakdown lists for the overview's query: the previous month for
 * "Last month", the month of a custom range's last day, and for the periods still running (24 hours
 * to 30 days, this month, this cycle) the month they end in, the current one: the API's default, so
 * none is named (undefined).
 */
function dailyMonthOf(query: Query, timeZone: string): string | undefined {
  if (query.range === 'last_month') return lastMonthIn(timeZone);
  if (query.range === 'custom') return String(query.to).slice(0, 7);
  return undefined;
}

/** The month before the current one in the time zone, as YYYY-MM. */
function lastMonthIn(timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: 'numeric',
  }).formatToParts();
  const part = (type: 'year' | 'month') => Number(parts.find((p) => p.type === type)!.value);
  // Date.UTC counts months from 0, so month - 2 is the previous one (January's, -1, is December before).
  return new Date(Date.UTC(part('year'), part('month') - 2, 1)).toISOString().slice(0, 7);
}

/** Each day of the period's month for the chosen user; a day links to its detail for the same user. */
function DailyBreakdown({ query }: { query: Query }) {
  const { org, formats } = useOrg();
  const month = dailyMonthOf(query, formats.timeZone);
  const daily = useApi<Daily>(`/v1/orgs/${org.id}/usage/daily`, { month, member: query.member, _: query._ });
  return (
    <Panel title={month ? `Daily breakdown, ${formats.month(month)}` : 'Daily breakdown this month'}>
      <Await loaded={daily} what="daily totals">
        {(d) => {
          const days = d.data.filter((day) => day.calls > 0).reverse();
          return days.length === 0 ? (
            <p className="empty">{month ? 'No usage in this month.' : 'No usage this month yet.'}</p>
          ) : (
            <div className="scroll short">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Day</th>
                    <th scope="col" className="num">
                      Spend
                    </th>
                    <th scope="col" className="num">
                      Calls
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {days.map((day) => (
                    <tr key={day.date}>
                      <th scope="row">
                        <Link href={withQuery(`/usage/daily/${day.date}`, { member: query.member })}>
                          {formats.day(day.date)}
                        </Link>
                      </th>
                      <td className="num">
                        {spendText(formats, d.unit, day)}
                        {moneyNote(formats, d.unit, day, d.currency) && (
                          <span className="muted"> · {moneyNote(formats, d.unit, day, d.currency)}</span>
                        )}
                      </td>
                      <td className="num">{formats.count(day.calls)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </Await>
    </Panel>
  );
}

/** Where each provider (by the catalog's id) shows an org its own usage and spend. */
const PROVIDER_CONSOLES = [
  { provider: 'openai', label: 'OpenAI usage', href: 'https://platform.openai.com/usage' },
  { provider: 'anthropic', label: 'Anthropic usage', href: 'https://console.anthropic.com/settings/usage' },
  { provider: 'google', label: 'Google Cloud billing', href: 'https://console.cloud.google.com/billing' },
];
/** More providers than an org uses at once, so the breakdown lists every one. */
const PROVIDERS_LIMIT = 50;

/**
 * BYOK: calls go to the org's own provider, so there is no cost to show; say so and point to the
 * consoles of the providers its usage names in the period (all of them while none is known).
 */
export function ByokNotice({ query }: { query: Query }) {
  const { org } = useOrg();
  const balance = useApi<Balance>(`/v1/orgs/${org.id}/balance`);
  const providers = useBreakdown('provider', query, PROVIDERS_LIMIT);
  const used = new Set(providers.data?.data.map((row) => row.key));
  const consoles = PROVIDER_CONSOLES.filter(({ provider }) => used.has(provider));
  return (
    <Panel title="Usage tracking is not available">
      <p>
        {balance.data?.notice ??
          'This organization uses its own provider keys: calls go straight to the provider, so their cost is not tracked here.'}
      </p>
      <p>See your spend in your provider's own console:</p>
      <ul>
        {(consoles.length > 0 ? consoles : PROVIDER_CONSOLES).map(({ provider, label, href }) => (
          <li key={provider}>
            <a href={href} target="_blank" rel="noreferrer">
              {label}
            </a>
          </li>
        ))}
      </ul>
    </Panel>
  );
}
