/**
 * Charts drawn as SVG, no chart library. Values arrive as decimal strings; Number() turns them into
 * pixel positions only, while labels and the accessible table show the exact figures.
 */
import { type RefObject, useId, useLayoutEffect, useRef, useState } from 'react';

export interface LineSeries {
  key: string;
  label: string;
  /** Decimal strings, one per x position. */
  values: string[];
}

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

/**
 * The width a chart draws at: its figure's width on screen, up to WIDTH. One unit of the drawing is
 * then one CSS pixel on a phone, so labels keep their size there instead of shrinking with a
 * drawing made for 640 px; wider screens scale the 640 px drawing up, as before.
 */
function useDrawingWidth(): [RefObject<HTMLElement | null>, number] {
  const ref = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(WIDTH);
  useLayoutEffect(() => {
    const figure = ref.current;
    if (!figure) return;
    const measure = () => setWidth(Math.min(WIDTH, Math.max(MIN_WIDTH, Math.round(figure.clientWidth))));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(figure);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}
/** Below this a chart scales down again rather than crowd its labels (a figure not laid out measures 0). */
const MIN_WIDTH = 240;
/** Room each x-axis date label gets, in drawing units (CSS pixels on a phone). */
const LABEL_ROOM = 80;
/** Room a column chart's label (an hour) gets: half a date's. */
const COLUMN_LABEL_ROOM = 40;

function niceMax(max: number): number {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  const step = [1, 2, 2.5, 5, 10].find((s) => s * power >= max) ?? 10;
  return step * power;
}

export function LineChart({
  title,
  xLabels,
  series,
  formatValue,
  formatAxis,
}: {
  title: string;
  xLabels: string[];
  series: LineSeries[];
  formatValue(value: string): string;
  formatAxis(value: number): string;
}) {
  const id = useId();
  const [figure, width] = useDrawingWidth();
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.map(Number))));
  const innerW = width - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i: number) =>
    PAD.left + (xLabels.length <= 1 ? innerW / 2 : (i * innerW) / (xLabels.length - 1));
  const y = (v: number) => PAD.top + innerH - (v / max) * innerH;
  const labelEvery = Math.max(1, Math.ceil(xLabels.length / Math.max(2, Math.floor(innerW / LABEL_ROOM))));
  return (
    <figure className="chart" ref={figure}>
      <svg viewBox={`0 0 ${width} ${HEIGHT}`} role="img" aria-labelledby={`${id}-title`}>
        <title id={`${id}-title`}>{title}</title>
        {[0, 0.25, 0.5, 0.75, 1].map((f) => (
          <g key={f} className="grid">
            <line x1={PAD.left} x2={width - PAD.right} y1={y(max * f)} y2={y(max * f)} />
            <text x={PAD.left - 6} y={y(max * f) + 4} textAnchor="end">
              {formatAxis(max * f)}
            </text>
          </g>
        ))}
        {xLabels.map((label, i) =>
          i % labelEvery === 0 ? (
            // The first and last labels lean inward, so neither is cut at the chart's edge.
            <text
              key={label + String(i)}
              className="axis"
              x={x(i)}
              y={HEIGHT - 8}
              textAnchor={i === 0 ? 'start' : i === xLabels.length - 1 ? 'end' : 'middle'}
            >
              {label}
            </text>
          ) : null,
        )}
        {series.map((s, index) => (
          <g key={s.key} className={`series series-${index % 6}`}>
            <polyline points={s.values.map((v, i) => `${x(i)},${y(Number(v))}`).join(' ')} />
            {s.values.map((v, i) => (
              <circle
                key={xLabels[i]! + String(i)}
                cx={x(i)}
                cy={y(Number(v))}
                r={xLabels.length > 40 ? 1.5 : 3}
              >
                <title>{`${s.label}, ${xLabels[i]}: ${formatValue(v)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      {series.length > 1 && (
        <figcaption className="legend">
          {series.map((s, index) => (
            <span key={s.key} className={`legend-item series-${index % 6}`}>
              <span className="swatch" aria-hidden="true" />
              {s.label}
            </span>
          ))}
        </figcaption>
      )}
      <table className="sr-only">
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">Period</th>
            {series.map((s) => (
              <th key={s.key} scope="col">
                {s.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {xLabels.map((label, i) => (
            <tr key={label + String(i)}>
              <th scope="row">{label}</th>
              {series.map((s) => (
                <td key={s.key}>{formatValue(s.values[i] ?? '0')}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

/** Horizontal bars, longest = highest, each labelled with its exact figure. */
export function BarList({
  rows,
}: {
  rows: { key: string; label: string; value: string; text: string; note?: string }[];
}) {
  const max = Math.max(0, ...rows.map((r) => Number(r.value)));
  return (
    <ul className="bars">
      {rows.map((row) => (
        <li key={row.key}>
          <div className="bar-label">
            <span>{row.label}</span>
            <span className="num">{row.text}</span>
          </div>
          <div className="bar-track" aria-hidden="true">
            <div
              className="bar-fill"
              style={{ width: `${max > 0 ? (Number(row.value) / max) * 100 : 0}%` }}
            />
          </div>
          {/* Under the bar, so a long note does not squeeze the label. */}
          {row.note && <div className="bar-note muted">{row.note}</div>}
        </li>
      ))}
    </ul>
  );
}

/** Vertical columns (e.g. the 24 hours of a day), each with its exact figure in a tooltip. */
export function ColumnChart({
  title,
  columns,
}: {
  title: string;
  columns: { key: string; label: string; value: string; text: string; highlight?: boolean }[];
}) {
  const id = useId();
  const [figure, width] = useDrawingWidth();
  const height = 120;
  const gap = width < WIDTH ? 2 : 4;
  const max = Math.max(0, ...columns.map((c) => Number(c.value)));
  const columnWidth = (width - gap * (columns.length - 1)) / Math.max(1, columns.length);
  // Every third column is labelled on a wide screen; fewer where the labels would touch.
  const labelEvery = Math.max(3, Math.ceil((columns.length * COLUMN_LABEL_ROOM) / width));
  return (
    <figure className="chart" ref={figure}>
      <svg viewBox={`0 0 ${width} ${height + 18}`} role="img" aria-labelledby={`${id}-title`}>
        <title id={`${id}-title`}>{title}</title>
        {columns.map((c, i) => {
          const h = max > 0 ? (Number(c.value) / max) * height : 0;
          const x = i * (columnWidth + gap);
          return (
            <g key={c.key} className={c.highlight ? 'column highlight' : 'column'}>
              <rect x={x} y={height - h} width={columnWidth} height={h} rx={2}>
                <title>{`${c.label}: ${c.text}`}</title>
              </rect>
              {i % labelEvery === 0 && (
                // The first label starts at the chart's edge: centred under a narrow column it was cut.
                <text
                  x={i === 0 ? 0 : x + columnWidth / 2}
                  y={height + 14}
                  textAnchor={i === 0 ? 'start' : 'middle'}
                >
                  {c.label}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <table className="sr-only">
        <caption>{title}</caption>
        <tbody>
          {columns.map((c) => (
            <tr key={c.key}>
              <th scope="row">{c.label}</th>
              <td>{c.text}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
