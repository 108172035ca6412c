// An x–y chart with error bars as a standalone SVG: one polyline per series through its points (sorted by x), a
// vertical bar of ±err at every point, optional horizontal reference lines (e.g. the teacher), a legend. Used by the
// study report (accuracy against GFLOPs, one line per criterion). Points carry data-* attributes for tests.
import { PALETTE, escapeXml, fmt, niceTicks } from './svg.ts';

export interface ErrorPoint {
  x: number;
  y: number;
  /** Half-length of the error bar (e.g. the standard deviation); null or 0 = no bar. */
  err: number | null;
  label?: string;
}

export interface ErrorSeries {
  name: string;
  points: ErrorPoint[];
  color?: string;
}

export interface ErrorPlotSpec {
  id: string;
  title: string;
  series: ErrorSeries[];
  xAxis: string;
  yAxis: string;
  /** Horizontal reference lines. */
  refs?: Array<{ name: string; y: number }>;
  width?: number;
  height?: number;
}

const r2 = (v: number) => String(Math.round(v * 100) / 100);

export function errorPlot(s: ErrorPlotSpec): string {
  const w = s.width ?? 560,
    h = s.height ?? 300;
  const left = 56,
    right = 150,
    top = 30,
    bottom = 42,
    pw = w - left - right,
    ph = h - top - bottom;
  const pts = s.series.flatMap((r) => r.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ys = [...pts.flatMap((p) => [p.y - (p.err ?? 0), p.y + (p.err ?? 0)]), ...(s.refs ?? []).map((r) => r.y)];
  let x0 = Math.min(...pts.map((p) => p.x)),
    x1 = Math.max(...pts.map((p) => p.x));
  if (!(x1 > x0)) {
    x0 = (Number.isFinite(x0) ? x0 : 0) - 0.5;
    x1 = x0 + 1;
  }
  const xpad = (x1 - x0) * 0.08;
  x0 -= xpad;
  x1 += xpad;
  const lo = Math.min(0, ...ys);
  let hi = Math.max(...ys, 1);
  hi += (hi - lo) * 0.05;
  if (!(hi > lo)) hi = lo + 1;
  const X = (v: number) => r2(left + ((v - x0) / (x1 - x0)) * pw);
  const Y = (v: number) => r2(top + ((hi - v) / (hi - lo)) * ph);
  const line = (xa: string, xb: string, ya: string, yb: string, stroke: string, extra = '') =>
    `<line x1="${xa}" x2="${xb}" y1="${ya}" y2="${yb}" stroke="${stroke}"${extra}/>`;
  const text = (x: string | number, y: string | number, anchor: string, t: string, extra = '') =>
    `<text x="${x}" y="${y}" text-anchor="${anchor}"${extra}>${escapeXml(t)}</text>`;
  let out =
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeXml(s.id)}" class="chart" ` +
    `width="${w}" height="${h}" ` +
    `viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeXml(s.title)}" font-family="system-ui, sans-serif" ` +
    `font-size="11"><title>${escapeXml(s.title)}</title><rect width="100%" height="100%" fill="#fff"/>` +
    text(r2(w / 2), 16, 'middle', s.title, ' font-size="13" font-weight="600"');
  for (const t of niceTicks(lo, hi, 5)) {
    out += line(String(left), r2(left + pw), Y(t), Y(t), '#eee');
    out += text(left - 5, r2(Number(Y(t)) + 4), 'end', fmt(t), ' fill="#555"');
  }
  for (const t of niceTicks(x0, x1, 5)) out += text(X(t), r2(top + ph + 14), 'middle', fmt(t), ' fill="#555"');
  out +=
    line(String(left), String(left), String(top), r2(top + ph), '#888') +
    line(String(left), r2(left + pw), r2(top + ph), r2(top + ph), '#888') +
    text(r2(left + pw / 2), h - 6, 'middle', s.xAxis, ' fill="#555"') +
    `<text transform="translate(13,${r2(top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#555">` +
    `${escapeXml(s.yAxis)}</text>`;
  let row = 0;
  const legend = (name: string, color: string, dashed: boolean) => {
    const ly = top + 8 + 16 * row++;
    return (
      line(
        r2(left + pw + 12),
        r2(left + pw + 32),
        String(ly),
        String(ly),
        color,
        ` stroke-width="2"${dashed ? ' stroke-dasharray="5 3"' : ''}`,
      ) + text(r2(left + pw + 36), ly + 4, 'start', name)
    );
  };
  for (const r of s.refs ?? []) {
    out +=
      `<line class="ref" x1="${left}" x2="${r2(left + pw)}" y1="${Y(r.y)}" y2="${Y(r.y)}" stroke="#555" ` +
      `stroke-dasharray="5 3"><title>${escapeXml(`${r.name}: ${fmt(r.y)}`)}</title></line>` +
      legend(r.name, '#555', true);
  }
  s.series.forEach((r, i) => {
    const color = r.color ?? PALETTE[i % PALETTE.length]!;
    const ps = r.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    out +=
      `<polyline class="series" data-series="${escapeXml(r.name)}" ` +
      `points="${ps.map((p) => `${X(p.x)},${Y(p.y)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1.8"/>`;
    for (const p of ps) {
      const e = p.err ?? 0,
        x = Number(X(p.x));
      const tip =
        `${r.name}${p.label ? ` (${p.label})` : ''}: ${fmt(p.y)}` + `${e > 0 ? ` ± ${fmt(e)}` : ''} at ${fmt(p.x)}`;
      if (e > 0) {
        out +=
          line(r2(x), r2(x), Y(p.y - e), Y(p.y + e), color) +
          line(r2(x - 4), r2(x + 4), Y(p.y - e), Y(p.y - e), color) +
          line(r2(x - 4), r2(x + 4), Y(p.y + e), Y(p.y + e), color);
      }
      out +=
        `<circle class="point" data-series="${escapeXml(r.name)}" data-x="${p.x}" data-y="${p.y}" ` +
        `data-err="${e}" ` +
        `cx="${r2(x)}" cy="${Y(p.y)}" r="3.5" fill="${color}"><title>${escapeXml(tip)}</title></circle>`;
    }
    out += legend(r.name, color, false);
  });
  return out + '</svg>';
}
