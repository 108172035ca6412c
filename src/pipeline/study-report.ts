// The study's table and report.html: per target and criterion the mean ± sample standard deviation over seeds of
// zero-shot top-1 and retrieval mean R@1 (pruned, and distilled) and of the distilled/teacher recovery ratio; a
// plain-text and a Markdown rendering; charts of accuracy against GFLOPs, one line per criterion with ±std bars.
import { writeFileAtomic } from '../io/atomic.ts';
import { errorPlot, type ErrorSeries } from '../report/error-plot.ts';
import { escapeXml, PALETTE } from '../report/svg.ts';
import { page } from './compress-report.ts';
import type { ModelEval } from './evaluate.ts';
import type { Criterion } from './prune-steps.ts';

export interface StudyRun {
  criterion: Criterion;
  target: string;
  seed: number;
  /** The run's compress folder. */
  dir: string;
  /** After pruning (width, then depth when the target prunes depth), before distillation. */
  pruned: ModelEval;
  /** After the last distillation. */
  distilled: ModelEval;
  /** distilled / teacher, per task (null when a task was not evaluated). */
  recovery: { zeroshot: number | null; retrieval: number | null };
  seconds: number;
}

/** Mean and sample standard deviation (n − 1; null for one value) of the non-null values; n counts them. */
export interface Stat {
  mean: number | null;
  std: number | null;
  n: number;
}

export function stat(values: Array<number | null>): Stat {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return { mean: null, std: null, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length < 2 ? null : Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
  return { mean, std, n: v.length };
}

export interface StudyCell {
  target: string;
  criterion: Criterion;
  seeds: number[];
  gflops: number;
  params: number;
  pruned_zeroshot: Stat;
  pruned_retrieval: Stat;
  zeroshot: Stat;
  retrieval: Stat;
  recovery_zeroshot: Stat;
  recovery_retrieval: Stat;
}

/** One cell per (target, criterion) that has runs, in grid order. GFLOPs and params: the mean over seeds. */
export function studyTable(
  runs: StudyRun[],
  _teacher: ModelEval,
  grid: { criteria: Criterion[]; targets: string[] },
): StudyCell[] {
  const cells: StudyCell[] = [];
  for (const target of grid.targets) {
    for (const criterion of grid.criteria) {
      const rs = runs.filter((r) => r.target === target && r.criterion === criterion).sort((a, b) => a.seed - b.seed);
      if (rs.length === 0) continue;
      const mean = (f: (r: StudyRun) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
      const st = (f: (r: StudyRun) => number | null) => stat(rs.map(f));
      cells.push({
        target,
        criterion,
        seeds: rs.map((r) => r.seed),
        gflops: mean((r) => r.distilled.gflops),
        params: mean((r) => r.distilled.params),
        pruned_zeroshot: st((r) => r.pruned.zeroshot),
        pruned_retrieval: st((r) => r.pruned.retrieval),
        zeroshot: st((r) => r.distilled.zeroshot),
        retrieval: st((r) => r.distilled.retrieval),
        recovery_zeroshot: st((r) => r.recovery.zeroshot),
        recovery_retrieval: st((r) => r.recovery.retrieval),
      });
    }
  }
  return cells;
}

/** "45.8 ± 1.2" in percent (a fraction's mean and std), "45.8" for one seed, "–" for none. */
export function fmtStat(s: Stat, scale = 100, digits = 1): string {
  if (s.mean === null) return '–';
  const m = (scale * s.mean).toFixed(digits);
  return s.std === null ? m : `${m} ± ${(scale * s.std).toFixed(digits)}`;
}

const HEAD = [
  'target',
  'criterion',
  'seeds',
  'GFLOPs',
  'zero-shot pruned',
  'zero-shot distilled',
  'R@1 pruned',
  'R@1 distilled',
  'R@1 recovery',
];

function rows(cells: StudyCell[], teacher: ModelEval): string[][] {
  const pct = (v: number | null) => (v === null ? '–' : (100 * v).toFixed(1));
  const rec = (c: StudyCell) =>
    fmtStat(c.recovery_retrieval, 100, 0) + (c.recovery_retrieval.mean === null ? '' : ' %');
  return [
    ['teacher', '', '', teacher.gflops.toFixed(4), '', pct(teacher.zeroshot), '', pct(teacher.retrieval), ''],
    ...cells.map((c) => [
      c.target,
      c.criterion,
      String(c.seeds.length),
      c.gflops.toFixed(4),
      fmtStat(c.pruned_zeroshot),
      fmtStat(c.zeroshot),
      fmtStat(c.pruned_retrieval),
      fmtStat(c.retrieval),
      rec(c),
    ]),
  ];
}

/** Plain-text table (figures in %; mean ± std over seeds). */
export function formatStudyTable(cells: StudyCell[], teacher: ModelEval): string {
  const all = [HEAD, ...rows(cells, teacher)];
  const w = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')).join('\n');
}

/** The same table in Markdown. */
export function markdownStudyTable(cells: StudyCell[], teacher: ModelEval): string {
  return [HEAD, HEAD.map(() => '---'), ...rows(cells, teacher)].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

interface ReportInput {
  settings: Record<string, unknown>;
  grid: { criteria: Criterion[]; targets: string[]; seeds: number[] };
  teacher: ModelEval;
  runs: StudyRun[];
  table: StudyCell[];
  seconds: number;
}

type Pick = (c: StudyCell) => Stat;

function plot(id: string, title: string, f: Pick, r: ReportInput, ref: { name: string; y: number | null }): string {
  const series: ErrorSeries[] = r.grid.criteria.map((criterion, i) => ({
    name: criterion,
    color: PALETTE[i % PALETTE.length],
    points: r.table
      .filter((c) => c.criterion === criterion && f(c).mean !== null)
      .map((c) => {
        const v = f(c);
        return { x: c.gflops, y: 100 * v.mean!, err: v.std === null ? null : 100 * v.std, label: c.target };
      }),
  }));
  const refs = ref.y === null ? [] : [{ name: ref.name, y: 100 * ref.y }];
  const svg = errorPlot({ id, title, series, xAxis: 'GFLOPs (one image + one text)', yAxis: '%', refs });
  return `<figure class="fig">${svg}</figure>`;
}

function runsTable(runs: StudyRun[]): string {
  const pct = (v: number | null) => (v === null ? '–' : (100 * v).toFixed(1));
  const head = ['target', 'criterion', 'seed', 'zero-shot (%)', 'R@1 (%)', 'seconds', 'report'];
  let h = '<table><tr>' + head.map((x, i) => `<th${i < 2 || i === 6 ? ' class="l"' : ''}>${x}</th>`).join('') + '</tr>';
  for (const x of runs) {
    const link = escapeXml(`runs/${x.target}/${x.criterion}/seed-${x.seed}/report.html`);
    h +=
      `<tr><td class="l">${escapeXml(x.target)}</td><td class="l">${x.criterion}</td><td>${x.seed}</td>` +
      `<td>${pct(x.distilled.zeroshot)}</td><td>${pct(x.distilled.retrieval)}</td><td>${x.seconds.toFixed(0)}</td>` +
      `<td class="l"><a href="${link}">report</a></td></tr>`;
  }
  return h + '</table>';
}

export function writeStudyReport(path: string, r: ReportInput): void {
  const s = r.settings as { distill?: unknown; stage?: string; tower?: string };
  const g = r.grid,
    planned = g.criteria.length * g.targets.length * g.seeds.length;
  let body = '<h1>mope-clip study: importance criteria compared over seeds</h1>';
  body +=
    `<p class="note">${r.runs.length} of ${planned} runs finished ` +
    `(criteria ${escapeXml(g.criteria.join(', '))}; ` +
    `targets ${escapeXml(g.targets.join(', '))}; seeds ${g.seeds.join(', ')}). Stage ${escapeXml(String(s.stage))}, ` +
    `tower ${escapeXml(String(s.tower))}; one distillation budget for every run ` +
    `(${escapeXml(JSON.stringify(s.distill ?? {}))}). ` +
    `Figures: mean ± sample standard deviation over seeds; recovery = distilled / teacher. ` +
    `Wall time ${(r.seconds / 60).toFixed(1)} min.</p>`;
  body += '<h2>Table</h2><pre>' + escapeXml(formatStudyTable(r.table, r.teacher)) + '</pre>';
  body += '<h2>Accuracy against compute</h2>';
  const teacherRef = (y: number | null) => ({ name: 'teacher', y });
  body += plot(
    'fig-retrieval',
    'retrieval mean R@1 after distillation',
    (c) => c.retrieval,
    r,
    teacherRef(r.teacher.retrieval),
  );
  body += plot(
    'fig-zeroshot',
    'zero-shot top-1 after distillation',
    (c) => c.zeroshot,
    r,
    teacherRef(r.teacher.zeroshot),
  );
  body += plot(
    'fig-retrieval-pruned',
    'retrieval mean R@1 after pruning, before distillation',
    (c) => c.pruned_retrieval,
    r,
    teacherRef(r.teacher.retrieval),
  );
  body += plot('fig-recovery', 'recovery: distilled / teacher retrieval R@1', (c) => c.recovery_retrieval, r, {
    name: '90 % (goal)',
    y: 0.9,
  });
  body += '<h2>Runs</h2>' + runsTable(r.runs);
  writeFileAtomic(path, page('mope-clip study', body));
}
