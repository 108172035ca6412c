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
  const w = s.width ?? 560, h = s.height ?? 300;
  const left = 56, right = 150, top = 30, bottom = 42, pw = w - left - right, ph = h - top - bottom;
  const pts = s.series.flatMap((r) => r.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ys = [...pts.flatMap((p) => [p.y - (p.err ?? 0), p.y + (p.err ?? 0)]), ...(s.refs ?? []).map((r) => r.y)];
  let x0 = Math.min(...pts.map((p) => p.x)), x1 = Math.max(...pts.map((p) => p.x));
  if (!(x1 > x0)) { x0 = (Number.isFinite(x0) ? x0 : 0) - 0.5; x1 = x0 + 1; }
  const xpad = (x1 - x0) * 0.08;
  x0 -= xpad; x1 += xpad;
  let lo = Math.min(0, ...ys), hi = Math.max(...ys, 1);
  hi += (hi - lo) * 0.05;
  if (!(hi > lo)) hi = lo + 1;
  const X = (v: number) => left + ((v - x0) / (x1 - x0)) * pw, Y = (v: number) => top + ((hi - v) / (hi - lo)) * ph;
  let out = `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeXml(s.id)}" class="chart" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
    `role="img" aria-label="${escapeXml(s.title)}" font-family="system-ui, sans-serif" font-size="11"><title>${escapeXml(s.title)}</title>` +
    `<rect width="100%" height="100%" fill="#fff"/><text x="${r2(w / 2)}" y="16" text-anchor="middle" font-size="13" font-weight="600">${escapeXml(s.title)}</text>`;
  for (const t of niceTicks(lo, hi, 5)) {
    out += `<line x1="${left}" x2="${r2(left + pw)}" y1="${r2(Y(t))}" y2="${r2(Y(t))}" stroke="#eee"/>` +
      `<text x="${left - 5}" y="${r2(Y(t) + 4)}" text-anchor="end" fill="#555">${escapeXml(fmt(t))}</text>`;
  }
  for (const t of niceTicks(x0, x1, 5)) out += `<text x="${r2(X(t))}" y="${r2(top + ph + 14)}" text-anchor="middle" fill="#555">${escapeXml(fmt(t))}</text>`;
  out += `<line x1="${left}" x2="${left}" y1="${top}" y2="${r2(top + ph)}" stroke="#888"/>` +
    `<line x1="${left}" x2="${r2(left + pw)}" y1="${r2(top + ph)}" y2="${r2(top + ph)}" stroke="#888"/>` +
    `<text x="${r2(left + pw / 2)}" y="${h - 6}" text-anchor="middle" fill="#555">${escapeXml(s.xAxis)}</text>` +
    `<text transform="translate(13,${r2(top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#555">${escapeXml(s.yAxis)}</text>`;
  let row = 0;
  const legend = (name: string, color: string, dashed: boolean) => {
    const ly = top + 8 + 16 * row++;
    return `<line x1="${r2(left + pw + 12)}" x2="${r2(left + pw + 32)}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"` +
      `${dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${r2(left + pw + 36)}" y="${ly + 4}">${escapeXml(name)}</text>`;
  };
  for (const r of s.refs ?? []) {
    out += `<line class="ref" x1="${left}" x2="${r2(left + pw)}" y1="${r2(Y(r.y))}" y2="${r2(Y(r.y))}" stroke="#555" stroke-dasharray="5 3">` +
      `<title>${escapeXml(`${r.name}: ${fmt(r.y)}`)}</title></line>` + legend(r.name, '#555', true);
  }
  s.series.forEach((r, i) => {
    const color = r.color ?? PALETTE[i % PALETTE.length]!;
    const ps = r.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    out += `<polyline class="series" data-series="${escapeXml(r.name)}" points="${ps.map((p) => `${r2(X(p.x))},${r2(Y(p.y))}`).join(' ')}" ` +
      `fill="none" stroke="${color}" stroke-width="1.8"/>`;
    for (const p of ps) {
      const e = p.err ?? 0, tip = `${r.name}${p.label ? ` (${p.label})` : ''}: ${fmt(p.y)}${e > 0 ? ` ± ${fmt(e)}` : ''} at ${fmt(p.x)}`;
      if (e > 0) {
        out += `<line x1="${r2(X(p.x))}" x2="${r2(X(p.x))}" y1="${r2(Y(p.y - e))}" y2="${r2(Y(p.y + e))}" stroke="${color}"/>` +
          `<line x1="${r2(X(p.x) - 4)}" x2="${r2(X(p.x) + 4)}" y1="${r2(Y(p.y - e))}" y2="${r2(Y(p.y - e))}" stroke="${color}"/>` +
          `<line x1="${r2(X(p.x) - 4)}" x2="${r2(X(p.x) + 4)}" y1="${r2(Y(p.y + e))}" y2="${r2(Y(p.y + e))}" stroke="${color}"/>`;
      }
      out += `<circle class="point" data-series="${escapeXml(r.name)}" data-x="${p.x}" data-y="${p.y}" data-err="${e}" cx="${r2(X(p.x))}" ` +
        `cy="${r2(Y(p.y))}" r="3.5" fill="${color}"><title>${escapeXml(tip)}</title></circle>`;
    }
    out += legend(r.name, color, false);
  });
  return out + '</svg>';
}
