// Tiny dependency-free SVG chart helpers for the HTML reports: heatmap, grouped bar chart, line chart, colour scales.
// Every chart is a standalone, well-formed <svg> element (xmlns set, text escaped) usable inline or as a .svg file.
// Cells and bars carry data-* attributes and a <title> tooltip so values can be read back (and tested).

export const PALETTE = [
  '#d62728',
  '#1f77b4',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const MISSING = '#e6e6e6';

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A short label for a number: 4 significant digits, no exponent for ordinary magnitudes. */
export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

function attrs(data: Record<string, string | number> | undefined): string {
  if (!data) return '';
  return Object.entries(data)
    .map(([k, v]) => ` data-${k}="${escapeXml(String(v))}"`)
    .join('');
}

function n2(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Colour scale: diverging (blue < 0 < red, white at 0, symmetric) or sequential (white → dark blue) over [min, max]. */
export interface ColorScale {
  kind: 'diverging' | 'sequential';
  min: number;
  max: number;
  label: string;
}

/** Diverging (centred on 0) when values go below zero or `signed`, sequential otherwise. */
export function scaleFor(values: number[], label: string, signed = false): ColorScale {
  const fin = values.filter(Number.isFinite);
  const min = fin.length ? Math.min(...fin) : 0,
    max = fin.length ? Math.max(...fin) : 1;
  if (min < 0 || signed) {
    const m = Math.max(Math.abs(min), Math.abs(max)) || 1;
    return { kind: 'diverging', min: -m, max: m, label };
  }
  return { kind: 'sequential', min, max: max > min ? max : min + 1, label };
}

type RGB = [number, number, number];
const DIV: RGB[] = [
  [33, 102, 172],
  [103, 169, 207],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [239, 138, 98],
  [178, 24, 43],
];
const SEQ: RGB[] = [
  [247, 251, 255],
  [198, 219, 239],
  [107, 174, 214],
  [33, 113, 181],
  [8, 48, 107],
];

function ramp(stops: RGB[], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x)),
    f = x - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function colorFor(s: ColorScale, v: number | null): string {
  if (v === null || !Number.isFinite(v)) return MISSING;
  const t = (v - s.min) / (s.max - s.min || 1);
  return ramp(s.kind === 'diverging' ? DIV : SEQ, t);
}

/** A compact in-cell label: integers for |v| ≥ 10, else 2 significant digits. */
export function fmtCell(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 10) return Math.abs(v) >= 1e5 ? v.toExponential(1) : v.toFixed(0);
  return v === 0 ? '0' : String(Number(v.toPrecision(2)));
}

/** Text colour readable on a cell of colour c ("rgb(r,g,b)"). */
function inkOn(c: string): string {
  const m = /rgb\((\d+),(\d+),(\d+)\)/.exec(c);
  if (!m) return '#222';
  const lum = 0.299 * Number(m[1]) + 0.587 * Number(m[2]) + 0.114 * Number(m[3]);
  return lum < 120 ? '#fff' : '#222';
}

/** Around `count` round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count,
    p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

function open(w: number, h: number, title: string, id: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeXml(id)}" class="chart" width="${n2(w)}" height="${n2(h)}" ` +
    `viewBox="0 0 ${n2(w)} ${n2(h)}" role="img" aria-label="${escapeXml(title)}" ${FONT} font-size="11">` +
    `<title>${escapeXml(title)}</title><rect width="100%" height="100%" fill="#fff"/>` +
    `<text x="${n2(w / 2)}" y="16" text-anchor="middle" font-size="13" font-weight="600">${escapeXml(title)}</text>`
  );
}

function legend(s: ColorScale, x: number, y: number, h: number): string {
  const n = 32,
    step = h / n;
  let out = `<g class="legend">`;
  for (let i = 0; i < n; i++) {
    const v = s.max - ((i + 0.5) / n) * (s.max - s.min);
    out += `<rect x="${n2(x)}" y="${n2(y + i * step)}" width="12" height="${n2(step + 0.5)}" fill="${colorFor(s, v)}"/>`;
  }
  out += `<rect x="${n2(x)}" y="${n2(y)}" width="12" height="${n2(h)}" fill="none" stroke="#999"/>`;
  out += `<text x="${n2(x + 16)}" y="${n2(y + 9)}">${escapeXml(fmt(s.max))}</text>`;
  if (s.kind === 'diverging') out += `<text x="${n2(x + 16)}" y="${n2(y + h / 2 + 4)}">0</text>`;
  out += `<text x="${n2(x + 16)}" y="${n2(y + h)}">${escapeXml(fmt(s.min))}</text>`;
  out += `<text x="${n2(x)}" y="${n2(y + h + 14)}" fill="#555">${escapeXml(s.label)}</text>`;
  return out + '</g>';
}

export interface HeatCell {
  row: number;
  col: number;
  value: number | null;
  /** Tooltip text. */
  title: string;
  data?: Record<string, string | number>;
}

export interface HeatmapSpec {
  id: string;
  title: string;
  rows: string[];
  cols: string[];
  rowAxis: string;
  colAxis: string;
  cells: HeatCell[];
  scale: ColorScale;
  /** Cell side in px (default: fits ~560 px, 14…44). */
  cell?: number;
  /** Print values in the cells when they are big enough (default true). */
  showValues?: boolean;
  format?: (v: number) => string;
}

export function heatmap(s: HeatmapSpec): string {
  const nr = s.rows.length,
    nc = s.cols.length;
  const cell =
    s.cell ?? Math.max(14, Math.min(44, Math.floor(560 / Math.max(nc, 1)), Math.floor(560 / Math.max(nr, 1))));
  const longest = Math.max(0, ...s.rows.map((r) => r.length));
  const left = Math.max(46, 28 + Math.ceil(longest * 6.2)),
    top = 30 + 18,
    gridW = nc * cell,
    gridH = nr * cell;
  const legendH = Math.max(60, Math.min(gridH, 160));
  const longCol = Math.max(0, ...s.cols.map((c) => c.length)),
    rotate = longCol * 6.2 > cell;
  const below = rotate ? Math.ceil(longCol * 6.2 * 0.65) + 16 : 44;
  const w = Math.max(left + gridW + 116, 260),
    h = top + Math.max(gridH + below, legendH + 44);
  const format = s.format ?? fmtCell;
  let out = open(w, h, s.title, s.id);
  out += `<text x="${n2(left + gridW / 2)}" y="${top - 8}" text-anchor="middle" fill="#555">${escapeXml(s.colAxis)}</text>`;
  const labelEvery = Math.ceil(12 / cell);
  s.cols.forEach((c, j) => {
    if (j % labelEvery !== 0) return;
    const x = n2(left + (j + 0.5) * cell);
    out += rotate
      ? `<text transform="translate(${x},${n2(top + gridH + 10)}) rotate(-40)" text-anchor="end" fill="#555">${escapeXml(c)}</text>`
      : `<text x="${x}" y="${n2(top + gridH + 13)}" text-anchor="middle" fill="#555">${escapeXml(c)}</text>`;
  });
  s.rows.forEach((r, i) => {
    if (i % labelEvery === 0)
      out += `<text x="${left - 6}" y="${n2(top + (i + 0.5) * cell + 4)}" text-anchor="end" fill="#555">${escapeXml(r)}</text>`;
  });
  out += `<text transform="translate(14,${n2(top + gridH / 2)}) rotate(-90)" text-anchor="middle" fill="#555">${escapeXml(s.rowAxis)}</text>`;
  out += `<rect x="${left}" y="${top}" width="${gridW}" height="${gridH}" fill="${MISSING}"/>`;
  const show = (s.showValues ?? true) && cell >= 30;
  out += '<g class="cells">';
  for (const c of s.cells) {
    const x = left + c.col * cell,
      y = top + c.row * cell,
      fill = colorFor(s.scale, c.value);
    out +=
      `<rect class="cell" x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff" stroke-width="1"${attrs(c.data)}>` +
      `<title>${escapeXml(c.title)}</title></rect>`;
    if (show && c.value !== null) {
      out += `<text x="${n2(x + cell / 2)}" y="${n2(y + cell / 2 + 4)}" text-anchor="middle" font-size="${cell >= 40 ? 10 : 8}" fill="${inkOn(fill)}" pointer-events="none">${escapeXml(format(c.value))}</text>`;
    }
  }
  out += '</g>';
  out += legend(s.scale, left + gridW + 16, top, legendH);
  return out + '</svg>';
}

export interface Bar {
  value: number | null;
  title: string;
  color?: string;
  data?: Record<string, string | number>;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface BarChartSpec {
  id: string;
  title: string;
  groups: BarGroup[];
  xAxis: string;
  yAxis: string;
  width?: number;
  height?: number;
}

/** Bars in groups (e.g. FFN groups per layer), zero baseline, negative values below it. */
export function barChart(s: BarChartSpec): string {
  const w = s.width ?? 720,
    h = s.height ?? 240;
  const left = 62,
    right = 14,
    top = 30,
    bottom = 40,
    pw = w - left - right,
    ph = h - top - bottom;
  const vals = s.groups
    .flatMap((g) => g.bars.map((b) => b.value))
    .filter((v): v is number => v !== null && Number.isFinite(v));
  let lo = Math.min(0, ...vals),
    hi = Math.max(0, ...vals);
  if (hi === lo) hi = lo + 1;
  const pad = (hi - lo) * 0.05;
  if (hi > 0) hi += pad;
  if (lo < 0) lo -= pad;
  const y = (v: number) => top + ((hi - v) / (hi - lo)) * ph;
  const nBars = s.groups.reduce((a, g) => a + g.bars.length, 0),
    gap = s.groups.length > 1 ? 1 : 0;
  const slot = pw / Math.max(1, nBars + gap * (s.groups.length - 1));
  const bw = Math.max(0.5, slot * (slot > 4 ? 0.8 : 1));
  let out = open(w, h, s.title, s.id) + axes(left, top, pw, ph, lo, hi, y, s.yAxis);
  out += `<text x="${n2(left + pw / 2)}" y="${h - 6}" text-anchor="middle" fill="#555">${escapeXml(s.xAxis)}</text>`;
  let k = 0;
  const labelEvery = Math.ceil(s.groups.length / Math.max(1, Math.floor(pw / 28)));
  out += '<g class="bars">';
  s.groups.forEach((g, gi) => {
    const x0 = left + k * slot;
    for (const b of g.bars) {
      const x = left + k * slot + (slot - bw) / 2;
      const v = b.value ?? 0,
        y1 = y(Math.max(v, 0)),
        y2 = y(Math.min(v, 0));
      out +=
        `<rect class="bar" x="${n2(x)}" y="${n2(y1)}" width="${n2(bw)}" height="${n2(Math.max(y2 - y1, b.value === null ? 0 : 0.5))}" ` +
        `fill="${b.value === null ? MISSING : (b.color ?? PALETTE[1])}"${attrs(b.data)}><title>${escapeXml(b.title)}</title></rect>`;
      k++;
    }
    if (gi % labelEvery === 0)
      out += `<text x="${n2((x0 + left + k * slot) / 2)}" y="${n2(top + ph + 13)}" text-anchor="middle" fill="#555">${escapeXml(g.label)}</text>`;
    k += gap;
  });
  return out + '</g></svg>';
}

function axes(
  left: number,
  top: number,
  pw: number,
  ph: number,
  lo: number,
  hi: number,
  y: (v: number) => number,
  label: string,
): string {
  let out = '<g class="axes">';
  for (const t of niceTicks(lo, hi, 5)) {
    out += `<line x1="${left}" x2="${n2(left + pw)}" y1="${n2(y(t))}" y2="${n2(y(t))}" stroke="${t === 0 ? '#888' : '#eee'}"/>`;
    out += `<text x="${left - 5}" y="${n2(y(t) + 4)}" text-anchor="end" fill="#555">${escapeXml(fmt(t))}</text>`;
  }
  out += `<line x1="${left}" x2="${left}" y1="${top}" y2="${n2(top + ph)}" stroke="#888"/>`;
  out += `<text transform="translate(13,${n2(top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#555">${escapeXml(label)}</text>`;
  return out + '</g>';
}

export interface Series {
  name: string;
  color: string;
  /** [x, y] points in drawing order. */
  points: Array<[number, number]>;
  dashed?: boolean;
}

export interface LineChartSpec {
  id: string;
  title: string;
  series: Series[];
  xAxis: string;
  yAxis: string;
  width?: number;
  height?: number;
}

/** Polylines over shared axes with a legend. */
export function lineChart(s: LineChartSpec): string {
  const w = s.width ?? 520,
    h = s.height ?? 260;
  const left = 62,
    right = 128,
    top = 30,
    bottom = 40,
    pw = w - left - right,
    ph = h - top - bottom;
  const pts = s.series.flatMap((r) => r.points).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  let x0 = Math.min(...pts.map((p) => p[0]), 0),
    x1 = Math.max(...pts.map((p) => p[0]), 1);
  let lo = Math.min(...pts.map((p) => p[1]), 0),
    hi = Math.max(...pts.map((p) => p[1]), 0);
  if (!(x1 > x0)) {
    x0 = 0;
    x1 = 1;
  }
  if (!(hi > lo)) hi = lo + 1;
  const pad = (hi - lo) * 0.05;
  hi += pad;
  if (lo < 0) lo -= pad;
  const X = (v: number) => left + ((v - x0) / (x1 - x0)) * pw,
    Y = (v: number) => top + ((hi - v) / (hi - lo)) * ph;
  let out = open(w, h, s.title, s.id) + axes(left, top, pw, ph, lo, hi, Y, s.yAxis);
  const integerX = pts.every(([a]) => Number.isInteger(a));
  for (const t of niceTicks(x0, x1, 5).filter((t) => !integerX || Number.isInteger(t))) {
    out += `<text x="${n2(X(t))}" y="${n2(top + ph + 13)}" text-anchor="middle" fill="#555">${escapeXml(fmt(t))}</text>`;
  }
  out += `<line x1="${left}" x2="${n2(left + pw)}" y1="${n2(top + ph)}" y2="${n2(top + ph)}" stroke="#888"/>`;
  out += `<text x="${n2(left + pw / 2)}" y="${h - 6}" text-anchor="middle" fill="#555">${escapeXml(s.xAxis)}</text>`;
  s.series.forEach((r, i) => {
    const d = r.points
      .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b))
      .map(([a, b]) => `${n2(X(a))},${n2(Y(b))}`)
      .join(' ');
    out +=
      `<polyline class="series" data-series="${escapeXml(r.name)}" points="${d}" fill="none" stroke="${r.color}" stroke-width="1.8"` +
      `${r.dashed ? ' stroke-dasharray="5 3"' : ''}><title>${escapeXml(r.name)}</title></polyline>`;
    const ly = top + 8 + i * 16;
    out += `<line x1="${n2(left + pw + 12)}" x2="${n2(left + pw + 32)}" y1="${ly}" y2="${ly}" stroke="${r.color}" stroke-width="2"${r.dashed ? ' stroke-dasharray="5 3"' : ''}/>`;
    out += `<text x="${n2(left + pw + 36)}" y="${ly + 4}">${escapeXml(r.name)}</text>`;
  });
  return out + '</svg>';
}
