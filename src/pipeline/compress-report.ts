// report.html of a compress run (and the shared pieces the demo report reuses): a table of every evaluated stage
// (parameters, GFLOPs, zero-shot top-1, retrieval mean R@1), a bar chart of the two scores per stage, the
// distillation loss curves from each distil stage's metrics.jsonl, and the module scores as a linked scores report.
// Output is well-formed XHTML with inline SVG (src/report/svg.ts). Dims: none.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { readScoresFile } from '../prune/scores-file.ts';
import { buildScoresReport } from '../report/scores-report.ts';
import { PALETTE, barChart, escapeXml, lineChart, type BarGroup, type Series } from '../report/svg.ts';
import type { ModelEval } from './evaluate.ts';
import type { Criterion } from './prune-steps.ts';
import type { TowerName } from '../prune/modules.ts';
import type { StagesFile } from './stages.ts';

/** What a compress run writes to summary.json (and what its report reads back). */
export interface CompressSummary {
  out: string;
  criterion: Criterion;
  towers: TowerName[];
  final_model: string;
  /** Figures by stage name: teacher, width (pruned, not retrained), width-distilled, depth, final. */
  evals: Record<string, ModelEval>;
  depth: unknown[];
  /** Distillation pairs per process per step (the batch over the MPI world size); null when nothing was distilled. */
  batch_per_rank: number | null;
  seconds: number;
}

export const CSS = `body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; } th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; } figure.fig { display: inline-block; margin: 8px; }
p.note { font-size: 13px; color: #555; max-width: 900px; } code { background: #f5f5f5; padding: 0 3px; }`;

export const pct = (v: number | null | undefined): string =>
  v === null || v === undefined ? '–' : (100 * v).toFixed(1);

export interface EvalRow {
  label: string;
  eval: ModelEval;
}

/** The figures table: one row per model. */
export function evalTable(rows: EvalRow[]): string {
  let h =
    '<table><tr><th class="l">model</th><th>params (M)</th><th>params without token emb. (M)</th><th>GFLOPs (image + text)</th>' +
    '<th>zero-shot top-1 (%)</th><th>retrieval mean R@1 (%)</th></tr>';
  for (const r of rows) {
    const e = r.eval;
    h +=
      `<tr><td class="l">${escapeXml(r.label)}</td><td>${(e.params / 1e6).toFixed(3)}</td><td>${(e.params_no_embedding / 1e6).toFixed(3)}</td>` +
      `<td>${e.gflops.toFixed(4)}</td><td>${pct(e.zeroshot)}</td><td>${pct(e.retrieval)}</td></tr>`;
  }
  return h + '</table>';
}

/** Bar chart of zero-shot top-1 and retrieval mean R@1 (in %) per model. */
export function scoreBars(id: string, title: string, rows: EvalRow[]): string {
  const groups: BarGroup[] = rows.map((r) => ({
    label: r.label,
    bars: [
      {
        value: r.eval.zeroshot === null ? null : 100 * r.eval.zeroshot,
        title: `${r.label}: zero-shot top-1 ${pct(r.eval.zeroshot)} %`,
        color: PALETTE[1],
      },
      {
        value: r.eval.retrieval === null ? null : 100 * r.eval.retrieval,
        title: `${r.label}: retrieval mean R@1 ${pct(r.eval.retrieval)} %`,
        color: PALETTE[0],
      },
    ],
  }));
  return `<figure class="fig">${barChart({ id, title, groups, xAxis: 'blue: zero-shot top-1 · red: retrieval mean R@1', yAxis: '%', width: Math.max(480, 90 * rows.length) })}</figure>`;
}

/** Training loss per step from a train run folder's metrics.jsonl (empty when there is none). */
export function lossPoints(runDir: string): Array<[number, number]> {
  const p = join(runDir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  const pts: Array<[number, number]> = [];
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as { type?: string; step?: number; total?: number };
      if (r.type === 'train' && typeof r.step === 'number' && typeof r.total === 'number') pts.push([r.step, r.total]);
    } catch {
      /* a torn last line of an interrupted run */
    }
  }
  return pts;
}

/** Loss curves of several runs, smoothed over a window so that small batches do not hide the trend. */
export function lossChart(id: string, title: string, runs: Array<{ name: string; dir: string }>): string {
  const series: Series[] = [];
  runs.forEach((r, i) => {
    const raw = lossPoints(r.dir);
    if (raw.length === 0) return;
    const w = Math.max(1, Math.floor(raw.length / 40));
    const points: Array<[number, number]> = [];
    for (let k = 0; k < raw.length; k += w) {
      const part = raw.slice(k, k + w);
      points.push([part[part.length - 1]![0], part.reduce((s, p) => s + p[1], 0) / part.length]);
    }
    series.push({ name: r.name, color: PALETTE[i % PALETTE.length]!, points });
  });
  if (series.length === 0) return '';
  return `<figure class="fig">${lineChart({ id, title, series, xAxis: 'step', yAxis: 'distillation loss', width: 640 })}</figure>`;
}

export function page(title: string, body: string): string {
  return (
    `<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"/><title>${escapeXml(title)}</title><style>${CSS}</style></head>` +
    `<body>${body}</body></html>\n`
  );
}

const STAGE_LABEL: Record<string, string> = {
  teacher: 'teacher',
  width: 'width-pruned (no retraining)',
  'width-distilled': 'width-pruned + distilled',
  depth: 'width + depth pruned',
  final: 'final (distilled)',
};

export interface CompressReportInput {
  options: Record<string, unknown>;
  summary: CompressSummary;
  ledger: StagesFile;
  runDir: string;
}

/** Writes RUN_DIR/report.html and RUN_DIR/scores/report.html (the module scores). */
export function writeCompressReport(path: string, r: CompressReportInput): void {
  const { options: o, summary: s, runDir } = r;
  const rows: EvalRow[] = Object.entries(s.evals).map(([k, e]) => ({ label: STAGE_LABEL[k] ?? k, eval: e }));
  const title = `mope-clip compress: ${String(o.stage)} stage, ${s.towers.join(' + ')} tower, ${s.criterion}`;
  let body = `<h1>${escapeXml(title)}</h1>`;
  body +=
    `<p class="note">Teacher <code>${escapeXml(String(o.model))}</code>; keep heads ${o.keep_heads}, keep FFN ${o.keep_ffn}` +
    `${o.keep_layers === null ? '' : `, keep layers ${o.keep_layers}`}; distillation data <code>${escapeXml(String(o.data))}</code>; ` +
    `calibration <code>${escapeXml(String(o.calib))}</code> (${o.calib_limit} items); seed ${o.seed}. Final model: <code>${escapeXml(s.final_model)}</code>.</p>`;
  body += '<h2>Figures</h2>' + evalTable(rows) + scoreBars('fig-scores', 'scores per stage', rows);
  const runs = ['distill-width', 'distill-final']
    .filter((d) => existsSync(join(runDir, d)))
    .map((d) => ({ name: d, dir: join(runDir, d) }));
  const lc = lossChart('fig-loss', 'distillation loss', runs);
  if (lc) body += '<h2>Distillation</h2>' + lc;
  const scoresDir = join(runDir, 'scores');
  const files = existsSync(scoresDir)
    ? readdirSync(scoresDir)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];
  if (files.length > 0) {
    const rep = buildScoresReport(
      files.map((f) => ({ name: f, file: readScoresFile(join(scoresDir, f)) })),
      { title: `${title}: module scores` },
    );
    writeFileAtomic(join(scoresDir, 'report.html'), rep.html);
    body +=
      `<h2>Module scores</h2><p class="note">Width scores (heads, FFN groups) of the teacher and the layer scores of each ` +
      `depth step: <a href="scores/report.html">scores/report.html</a> (${files.map(escapeXml).join(', ')}).</p>`;
  }
  body +=
    '<h2>Stages</h2><table><tr><th class="l">stage</th><th>seconds</th><th class="l">finished</th></tr>' +
    r.ledger.completed
      .map(
        (c) =>
          `<tr><td class="l">${escapeXml(c.name)}</td><td>${c.seconds.toFixed(1)}</td><td class="l">${escapeXml(c.finished)}</td></tr>`,
      )
      .join('') +
    '</table>';
  writeFileAtomic(path, page(title, body));
}
