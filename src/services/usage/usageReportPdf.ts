/**
 * The usage report for stakeholders, as a PDF (pdfkit, standard fonts, so the text is extractable):
 * totals against the period before, the cumulative spend chart, breakdowns by feature, member and
 * model, the top conversations, and the limits and alerts of the period. Every figure comes from
 * the same verbs the API answers with, so the report and the dashboard agree to the last unit;
 * amounts print as the exact decimal strings (money rounded half to even to cents for reading).
 */
import { dateIn } from '../../domain/calendar.ts';
import { allocate, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { COST_SCALE } from '../../domain/usageTotals.ts';
import { type Currency, fixedMinor, MINOR_DIGITS } from '../../domain/vat.ts';
import { listAlerts } from '../alerts/listAlerts.ts';
import type { Ctx } from '../context.ts';
import { getLimits } from '../limits/getLimits.ts';
import { getUsageBreakdown, type UsageBreakdown } from './getUsageBreakdown.ts';
import { getUsageSummary } from './getUsageSummary.ts';
import { getUsageTimeseries } from './getUsageTimeseries.ts';
import { loadScope, type UsageQuery, whereOf } from './scope.ts';

const TOP = 10;
const MARGIN = 50;
const WIDTH = 495;

interface ConversationRow {
  conversation_id: string;
  calls: string;
  credits: string;
  cost: string;
  started: Date;
  ended: Date;
}

/** Gathers the report's figures (checking access and the range first) and renders it. */
export async function usageReportPdf(ctx: Ctx, orgId: string, query: UsageQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const breakdown = (by: 'feature' | 'member' | 'model') =>
    getUsageBreakdown(ctx, orgId, { ...query, by, limit: TOP }, now);
  const params: unknown[] = [];
  const where = whereOf('events', orgId, scope.range, query, params);
  const [summary, series, features, members, models, conversations, limits, alerts] = await Promise.all([
    getUsageSummary(ctx, orgId, query, now),
    getUsageTimeseries(
      ctx,
      orgId,
      { ...query, granularity: scope.range.granularity, cumulative: true, split_limit: 5 },
      now,
    ),
    breakdown('feature'),
    breakdown('member'),
    breakdown('model'),
    ctx.db.read.query<ConversationRow>(
      `SELECT e.conversation_id, count(*)::text AS calls, sum(e.credits)::text AS credits,
              sum(e.cost)::text AS cost, min(e.occurred_at) AS started, max(e.occurred_at) AS ended
         FROM events e WHERE ${where} AND e.conversation_id IS NOT NULL
        GROUP BY 1 ORDER BY sum(e.credits) DESC, sum(e.cost) DESC, 1 LIMIT 5`,
      params,
    ),
    getLimits(ctx, orgId, now),
    listAlerts(ctx, orgId, { limit: 100 }),
  ]);
  const inRange = alerts.data.filter((a) => {
    const at = Date.parse(a.created_at);
    return at >= scope.range.start.getTime() && at < scope.range.end.getTime();
  });
  // The org's own calendar dates: its last day ends at the range's end.
  const start = dateIn(scope.org.timezone, scope.range.start);
  const end = dateIn(scope.org.timezone, new Date(scope.range.end.getTime() - 1));
  const currency = scope.currency as Currency;
  const minor = (amount: string) => Ratio.parse(amount).roundHalfEven(MINOR_DIGITS[currency]);
  const showMinor = (units: bigint) => `${currency} ${fixedMinor(units, currency)}`;
  const money = (amount: string) => showMinor(minor(amount));
  const figures = (r: { credits: string; cost: string }, shown = money(r.cost)) =>
    scope.unit === 'credits' ? `${r.credits} credits (${shown})` : shown;

  // Loaded when a PDF is asked for: most processes never make one.
  const { default: PDFDocument } = await import('pdfkit');
  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    info: { Title: `Usage report ${scope.org.name} ${start} to ${end}`, Author: 'Tally', CreationDate: now },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const heading = (text: string) => {
    if (doc.y > 700) doc.addPage();
    doc.moveDown(1).font('Helvetica-Bold').fontSize(13).text(text, MARGIN).font('Helvetica').fontSize(10);
    doc.moveDown(0.3);
  };

  doc.font('Helvetica-Bold').fontSize(20).text('Usage report');
  doc.font('Helvetica').fontSize(11).text(`${scope.org.name} (${scope.org.id})`);
  doc.text(`${start} to ${end}, ${scope.org.timezone}; billing mode ${scope.org.billing_mode}`);

  heading('Totals');
  doc.text(`Spent: ${figures(summary)}`);
  doc.text(`Previous period: ${figures(summary.previous)}; trend ${summary.trend.label}`);
  doc.text(
    `Calls: ${summary.calls}; active members: ${summary.active_members}; features: ${summary.features}; model tiers: ${summary.model_tiers}`,
  );
  doc.text(
    `Tokens: ${summary.tokens.input} input (${summary.tokens.cache_read} read from cache, ${summary.tokens.cache_write} written to it), ${summary.tokens.output} output`,
  );

  heading('Cumulative spend');
  drawCumulative(
    doc,
    series.data.map((d) => ({ start: d.start, value: scope.unit === 'credits' ? d.credits : d.cost })),
  );

  const table = (title: string, b: UsageBreakdown) => {
    heading(title);
    if (b.data.length === 0) {
      doc.text('No usage in this period.');
      return;
    }
    // Rows rounded each on its own may not add up to the rounded total: the total's minor units
    // are shared out by the rows' exact costs instead (largest remainder), the rest going to the
    // groups not listed.
    const listed = b.data.map((r) => Ratio.parse(r.cost));
    const rest = b.data.reduce((left, r) => left.sub(Ratio.parse(r.cost)), Ratio.parse(b.total.cost));
    const parts = allocate(minor(b.total.cost), [...listed, rest]);
    b.data.forEach((r, i) => {
      const share = Ratio.parse(r.share).mul(Ratio.int(100)).toDecimal(1);
      doc.text(`${r.label}: ${figures(r, showMinor(parts[i]!))}, ${r.calls} calls, ${share}%`);
    });
    if (b.groups > b.data.length) {
      doc.text(`... and ${b.groups - b.data.length} more: ${showMinor(parts.at(-1)!)}`);
    }
  };
  table('By feature', features);
  table('By member', members);
  table('By model', models);

  heading('Top conversations');
  if (conversations.length === 0) doc.text('No conversations in this period.');
  for (const c of conversations) {
    const minutes = Math.round((new Date(c.ended).getTime() - new Date(c.started).getTime()) / 60_000);
    const cost = formatUnits(Ratio.parse(c.cost).roundHalfEven(COST_SCALE), COST_SCALE);
    doc.text(
      `${c.conversation_id}: ${figures({ credits: formatCredits(BigInt(c.credits)), cost })}, ${c.calls} calls, ${minutes} min`,
    );
  }

  heading('Limits and alerts');
  doc.text(
    `Monthly limit: ${limits.allowed_limit ? money(limits.allowed_limit) : 'none'}; alert threshold: ${limits.alert_threshold ? money(limits.alert_threshold) : 'none'}; spent this month: ${money(limits.spent)} (${limits.status})`,
  );
  if (inRange.length === 0) doc.text('No alerts in this period.');
  for (const a of inRange) {
    doc.text(
      `${a.created_at.slice(0, 16).replace('T', ' ')} UTC: ${a.type} (${a.scope}, ${a.threshold_percent}%)`,
    );
  }
  doc.end();
  return { filename: `usage-report-${orgId}-${start}-${end}.pdf`, pdf: await done };
}

/** A line chart of the running total, drawn in vector so it prints sharp. */
function drawCumulative(doc: PDFKit.PDFDocument, points: { start: string; value: string }[]) {
  const height = 140;
  const top = doc.y;
  const left = MARGIN + 60;
  const width = WIDTH - 60;
  const last = points.at(-1)?.value ?? '0';
  // Plot coordinates only; the printed figures stay the exact strings.
  const max = Math.max(Number(last), 1e-9);
  doc.save().lineWidth(0.5).strokeColor('#999999');
  doc
    .moveTo(left, top)
    .lineTo(left, top + height)
    .lineTo(left + width, top + height)
    .stroke();
  doc.restore();
  doc.fontSize(8).text(last, MARGIN, top - 4, { width: 55, align: 'right' });
  doc.text('0', MARGIN, top + height - 4, { width: 55, align: 'right' });
  if (points.length > 0) {
    doc.text(points[0]!.start.slice(0, 10), left, top + height + 4);
    doc.text(points.at(-1)!.start.slice(0, 10), left + width - 60, top + height + 4, {
      width: 60,
      align: 'right',
    });
    const step = points.length > 1 ? width / (points.length - 1) : 0;
    doc.save().lineWidth(1.5).strokeColor('#2f6fde');
    points.forEach((p, i) => {
      const x = left + i * step;
      const y = top + height - (Number(p.value) / max) * height;
      if (i === 0) doc.moveTo(x, y);
      else doc.lineTo(x, y);
    });
    doc.stroke().restore();
  }
  doc.fontSize(10);
  doc.x = MARGIN;
  doc.y = top + height + 20;
}
