// The HTML report of one or more scores files: summary table, per file and tower a layer × head heatmap, FFN group
// bars, layer bars and the sorted importance curve; with several criteria a side-by-side comparison (compare.ts).
// Dims: per tower L layers, NH_l heads, G_l FFN groups (see src/prune/modules.ts). Output is well-formed XHTML.
import { basename } from 'node:path';
import type { ModuleKind, TowerName } from '../prune/modules.ts';
import type { ScoreEntry, ScoresFile } from '../prune/scores-file.ts';
import { comparisonSection } from './compare.ts';
import {
  FigureSink,
  KINDS,
  KIND_LABEL,
  METRIC_LABEL,
  TOWERS,
  primaryValue,
  type Figure,
  type ReportInput,
} from './figures.ts';
import {
  PALETTE,
  barChart,
  escapeXml,
  fmt,
  heatmap,
  lineChart,
  scaleFor,
  type BarGroup,
  type HeatCell,
} from './svg.ts';

export type { Figure, ReportInput };

export interface Report {
  html: string;
  /** Every chart of the report as a standalone SVG document. */
  figures: Figure[];
}

function stemOf(name: string): string {
  return basename(name).replace(/\.json$/i, '');
}

function layerLabel(file: ScoresFile, tower: TowerName, l: number): string {
  const m = file.model.geometry[tower].layerMap?.[l];
  return m !== undefined && m !== l ? `${l} (was ${m})` : String(l);
}

function describe(file: ScoresFile, e: ScoreEntry): string {
  const what = e.kind === 'head' ? `head ${e.index}` : e.kind === 'ffn' ? `FFN group ${e.index}` : 'whole layer';
  const parts = [`${e.tower} layer ${e.layer} ${what}: ${METRIC_LABEL[file.metric]} ${fmt(primaryValue(file, e))}`];
  if (file.metric === 'mope' && e.loss_increase !== null) parts.push(`loss increase ${fmt(e.loss_increase)}`);
  if (file.metric !== 'magnitude' && typeof e.magnitude === 'number') parts.push(`magnitude ${fmt(e.magnitude)}`);
  return parts.join(', ');
}

function cellData(file: ScoresFile, e: ScoreEntry, value: number | null): Record<string, string | number> {
  const d: Record<string, string | number> = {
    tower: e.tower,
    kind: e.kind,
    layer: e.layer,
    index: e.index,
    value: value === null ? 'null' : String(value),
  };
  if (e.kind === 'head') d.head = e.index;
  if (file.metric === 'mope' && e.loss_increase !== null) d['loss-increase'] = String(e.loss_increase);
  return d;
}

function headHeatmap(
  sink: FigureSink,
  stem: string,
  file: ScoresFile,
  tower: TowerName,
  mods: ScoreEntry[],
  which: 'primary' | 'loss',
): string {
  const g = file.model.geometry[tower];
  const heads = mods.filter((m) => m.kind === 'head');
  const value = (e: ScoreEntry) => (which === 'loss' ? e.loss_increase : primaryValue(file, e));
  const label = which === 'loss' ? 'loss increase' : METRIC_LABEL[file.metric];
  const cells: HeatCell[] = heads.map((e) => ({
    row: e.layer,
    col: e.index,
    value: value(e),
    title: describe(file, e),
    data: cellData(file, e, value(e)),
  }));
  const vals = cells.map((c) => c.value).filter((v): v is number => v !== null);
  const title = `${tower} heads: ${label}`;
  return sink.add(`${stem}-${tower}-heads${which === 'loss' ? '-loss' : ''}`, title, (id) =>
    heatmap({
      id,
      title,
      rows: g.heads.map((_, l) => layerLabel(file, tower, l)),
      cols: Array.from({ length: Math.max(0, ...g.heads) }, (_, h) => String(h)),
      rowAxis: 'layer',
      colAxis: 'head',
      cells,
      scale: scaleFor(vals, label, file.metric === 'mope'),
    }),
  );
}

function kindBars(
  sink: FigureSink,
  stem: string,
  file: ScoresFile,
  tower: TowerName,
  mods: ScoreEntry[],
  kind: 'ffn' | 'layer',
): string {
  const L = file.model.geometry[tower].heads.length;
  const groups: BarGroup[] = [];
  for (let l = 0; l < L; l++) {
    const ms = mods.filter((m) => m.kind === kind && m.layer === l).sort((a, b) => a.index - b.index);
    if (kind === 'layer' && ms.length === 0) continue;
    groups.push({
      label: layerLabel(file, tower, l),
      bars: ms.map((e) => ({
        value: primaryValue(file, e),
        title: describe(file, e),
        data: cellData(file, e, primaryValue(file, e)),
        color: kind === 'ffn' ? PALETTE[l % 2 === 0 ? 1 : 7] : PALETTE[0],
      })),
    });
  }
  const title =
    kind === 'ffn'
      ? `${tower} FFN groups of ${file.ffn_group_size} neurons, per layer: ${METRIC_LABEL[file.metric]}`
      : `${tower} whole layers: ${METRIC_LABEL[file.metric]}`;
  return sink.add(`${stem}-${tower}-${kind === 'ffn' ? 'ffn' : 'layers'}`, title, (id) =>
    barChart({
      id,
      title,
      groups,
      xAxis: kind === 'ffn' ? 'layer (bars: FFN groups in neuron order)' : 'layer',
      yAxis: METRIC_LABEL[file.metric],
      width: kind === 'ffn' ? 760 : 420,
    }),
  );
}

/** Module values of one kind sorted most important first (MoPE ties broken by loss increase). */
export function sortedValues(file: ScoresFile, mods: ScoreEntry[]): number[] {
  return mods
    .filter((m) => primaryValue(file, m) !== null)
    .sort((a, b) => primaryValue(file, b)! - primaryValue(file, a)! || (b.loss_increase ?? 0) - (a.loss_increase ?? 0))
    .map((m) => primaryValue(file, m)!);
}

function sortedCurve(sink: FigureSink, stem: string, file: ScoresFile, tower: TowerName, mods: ScoreEntry[]): string {
  const scaled = file.metric !== 'mope';
  const series = KINDS.flatMap((kind, i) => {
    const v = sortedValues(
      file,
      mods.filter((m) => m.kind === kind),
    );
    if (v.length === 0) return [];
    const m = scaled ? Math.max(...v.map(Math.abs)) || 1 : 1;
    return [
      {
        name: `${KIND_LABEL[kind]} (${v.length})`,
        color: PALETTE[i],
        points: v.map((y, r) => [v.length > 1 ? r / (v.length - 1) : 0, y / m] as [number, number]),
      },
    ];
  });
  const title = `${tower}: sorted importance`;
  return sink.add(`${stem}-${tower}-sorted`, title, (id) =>
    lineChart({
      id,
      title,
      series,
      xAxis: 'rank / (modules of the kind − 1), most important first',
      yAxis: scaled ? `${METRIC_LABEL[file.metric]} / max` : METRIC_LABEL[file.metric],
    }),
  );
}

function towerSection(sink: FigureSink, stem: string, file: ScoresFile, tower: TowerName): string {
  const mods = file.modules.filter((m) => m.tower === tower);
  if (mods.length === 0) return '';
  const has = (k: ModuleKind) => mods.some((m) => m.kind === k);
  const g = file.model.geometry[tower];
  let out = `<h3>${escapeXml(tower)} tower <span class="dim">(${g.heads.length} layers, heads ${escapeXml(widths(g.heads))}, FFN ${escapeXml(widths(g.ffn))})</span></h3><div class="figs">`;
  if (has('head')) {
    out += headHeatmap(sink, stem, file, tower, mods, 'primary');
    if (file.metric === 'mope') out += headHeatmap(sink, stem, file, tower, mods, 'loss');
  }
  if (has('ffn')) out += kindBars(sink, stem, file, tower, mods, 'ffn');
  if (has('layer')) out += kindBars(sink, stem, file, tower, mods, 'layer');
  out += sortedCurve(sink, stem, file, tower, mods);
  out += '</div>' + extremes(file, mods);
  return out;
}

function widths(xs: number[]): string {
  return xs.every((x) => x === xs[0]) ? `${xs[0]} per layer` : xs.join('/');
}

/** The least and most important modules of a tower, as text. */
function extremes(file: ScoresFile, mods: ScoreEntry[]): string {
  const scored = mods.filter((m) => primaryValue(file, m) !== null);
  if (scored.length < 2) return '';
  const s = [...scored].sort(
    (a, b) => primaryValue(file, a)! - primaryValue(file, b)! || (a.loss_increase ?? 0) - (b.loss_increase ?? 0),
  );
  const k = Math.min(5, Math.floor(s.length / 2));
  const li = (e: ScoreEntry) => `<li>${escapeXml(describe(file, e))}</li>`;
  return (
    `<div class="extremes"><div><b>least important</b><ol>${s.slice(0, k).map(li).join('')}</ol></div>` +
    `<div><b>most important</b><ol>${s.slice(-k).reverse().map(li).join('')}</ol></div></div>`
  );
}

function summaryTable(inputs: ReportInput[]): string {
  const rows = inputs.map(({ name, file: f }) => {
    const data =
      [f.data, f.zeroshot_data ? `zero-shot: ${f.zeroshot_data}` : null, f.limit !== null ? `limit ${f.limit}` : null]
        .filter(Boolean)
        .join('; ') || '–';
    const speed =
      f.cost.layer_forwards > 0 && f.cost.naive_layer_forwards > 0
        ? ` (naive ${f.cost.naive_layer_forwards}, ×${fmt(f.cost.naive_layer_forwards / f.cost.layer_forwards)})`
        : '';
    const mods = `${f.modules.length}/${f.expected_modules}${f.complete ? '' : ' <b class="warn">incomplete</b>'}${f.shard ? ` shard ${f.shard.index}/${f.shard.count}` : ''}`;
    const cells = [
      escapeXml(name),
      escapeXml(f.metric) + (f.metric === 'random' ? ` (seed ${f.seed})` : ''),
      `${escapeXml(f.model.path)}<br/><code>${escapeXml(f.model.fingerprint)}</code>`,
      escapeXml(data),
      escapeXml(f.task ?? '–'),
      f.base ? escapeXml(fmt(f.base.z)) : '–',
      f.base ? escapeXml(fmt(f.base.loss)) : '–',
      `${escapeXml(f.towers.join(', '))}; ${escapeXml(f.granularity.join(', '))}; FFN group ${f.ffn_group_size}`,
      mods,
      `${f.cost.layer_forwards} layer-forwards${escapeXml(speed)}, ${escapeXml(fmt(f.cost.seconds))} s`,
    ];
    return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  const head = ['file', 'metric', 'model', 'data', 'task', 'base Z', 'base loss', 'modules scored', 'modules', 'cost'];
  return `<table class="summary"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; } .dim { color: #777; font-weight: normal; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; } th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } code { font-size: 12px; color: #555; } .warn { color: #b00; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; } figure.fig { margin: 0; }
.extremes { display: flex; gap: 48px; font-size: 13px; } .extremes ol { margin: 4px 0; padding-left: 22px; }
p.nav { font-size: 13px; } p.nav a { color: #1f5fa8; }
p.note { font-size: 13px; color: #555; max-width: 900px; }
`;

/** Builds the report; inputs must already be validated (readScoresFile). */
export function buildScoresReport(inputs: ReportInput[], opts: { title?: string } = {}): Report {
  const sink = new FigureSink();
  const title = opts.title ?? `MoPE-CLIP scores report: ${inputs.map((i) => basename(i.name)).join(', ')}`;
  let body = `<h1>${escapeXml(title)}</h1>`;
  body +=
    `<p class="note">MoPE(θ) = Z(model) − Z(model with θ removed); higher = more important. Loss increase = calibration ` +
    `contrastive loss with θ removed minus without; it breaks MoPE ties. Grey cells: not scored (or not in this layer).</p>`;
  const comparison = comparisonSection(sink, inputs);
  const nav = inputs.map(({ name }, i) => `<a href="#file-${i}">${escapeXml(basename(name))}</a>`);
  if (comparison) nav.push('<a href="#comparison">criteria compared</a>');
  body += `<p class="nav">${nav.join(' · ')}</p><h2>Summary</h2>${summaryTable(inputs)}`;
  inputs.forEach(({ name, file }, i) => {
    const stem = stemOf(name);
    body += `<h2 id="file-${i}">${escapeXml(name)}: ${escapeXml(METRIC_LABEL[file.metric])}</h2>`;
    if (file.modules.length === 0) body += '<p class="note">No module scored yet.</p>';
    for (const tower of TOWERS) body += towerSection(sink, stem, file, tower);
  });
  body += comparison;
  const html =
    `<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"/><title>${escapeXml(title)}</title><style>${CSS}</style></head>` +
    `<body>${body}<p class="note">Generated by mope-clip report.</p></body></html>\n`;
  return { html, figures: sink.figures };
}
