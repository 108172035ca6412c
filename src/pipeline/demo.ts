// `mope-clip demo`: the README's first command. Gets the small teacher (shipped in assets/demo-teacher, else cached in
// .cache/demo, else trained from scratch), evaluates it once, then for the vision and the text tower compresses it
// to half width (heads and FFN) with each criterion — MoPE, magnitude, Taylor, random — distils each for the same
// budget, and prints one table (criterion, parameters, GFLOPs, zero-shot top-1 and retrieval mean R@1 before and
// after distillation, next to the teacher's) plus OUT/report.html and OUT/demo.json. Dims: see teacher.ts.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { loadEvalModel } from '../eval/run.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { modelFingerprint } from '../prune/scores-file.ts';
import { escapeXml } from '../report/svg.ts';
import { compress, type DistillSettings } from './compress.ts';
import { evalTable, lossChart, page, pct, scoreBars, type EvalRow } from './compress-report.ts';
import { evaluateModel, openEvalSets, type ModelEval } from './evaluate.ts';
import type { Criterion } from './prune-steps.ts';
import { DEMO_RECIPE, PACKAGE_DIR, hasShippedTeacher, teacherCommand, trainTeacher, unpackShippedTeacher } from './teacher.ts';

export interface DemoOptions {
  out: string;
  /** Teacher cache (default PACKAGE_DIR/.cache/demo). */
  cacheDir?: string;
  /** Train the teacher from scratch even when a shipped or cached one exists. */
  retrainTeacher?: boolean;
  criteria?: Criterion[];
  towers?: Array<'vision' | 'text'>;
  /** Distillation budget per compressed model. */
  distill?: Partial<DistillSettings>;
  /** Zero-shot images evaluated (a fixed subset of the 7,000 test images; default all). */
  zeroshotLimit?: number;
  seed?: number;
}

export const DEMO_DISTILL: DistillSettings = { steps: 80, batch: 64, lr: 5e-4, weightDecay: 0.05, warmup: 5, gradClip: 1 };
export const DEMO_EVAL = { zeroshot: 'builtin:fashion-mnist:test', retrieval: 'builtin:fashion-scenes:test' };
export const DEMO_CALIB = { pairs: 'builtin:fashion-scenes:val', classes: 'builtin:fashion-mnist:val', limit: 128 };

export interface DemoRow {
  tower: 'vision' | 'text';
  criterion: Criterion;
  before: ModelEval;
  after: ModelEval;
  run: string;
  seconds: number;
}

/** The teacher folder to use: shipped (unpacked into the cache), cached, or trained now. */
async function teacherDir(rt: Runtime, o: DemoOptions): Promise<{ dir: string; source: string }> {
  const cache = o.cacheDir ?? join(PACKAGE_DIR, '.cache', 'demo');
  if (!o.retrainTeacher) {
    const shipped = join(cache, 'shipped-teacher');
    if (hasShippedTeacher()) {
      if (!existsSync(join(shipped, 'tokenizer.json'))) unpackShippedTeacher(shipped);
      return { dir: shipped, source: 'shipped (assets/demo-teacher)' };
    }
    const trained = join(cache, 'teacher');
    if (existsSync(join(trained, 'tokenizer.json'))) return { dir: trained, source: `cached (${trained})` };
  }
  const dir = join(cache, 'teacher');
  // A finished earlier training is redone from scratch; an interrupted one (run folder without teacher) resumes.
  if (o.retrainTeacher && existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(cache, 'teacher-run'), { recursive: true, force: true });
  }
  const r = await trainTeacher(rt, join(cache, 'teacher-run'), dir);
  rt.log.info(`teacher trained in ${(r.seconds / 60).toFixed(1)} min wall, ${(r.cpuSeconds / 60).toFixed(1)} min CPU (${r.zeroed} untouched token rows zeroed) → ${dir}`);
  return { dir, source: 'trained now' };
}

function fmtRow(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

/** The demo's plain-text table. */
export function demoTable(teacher: ModelEval, rows: DemoRow[]): string {
  const head = ['tower', 'criterion', 'params (M)', 'enc. params (M)', 'GFLOPs', 'zero-shot before → after', 'R@1 before → after'];
  const w = [7, 10, 10, 15, 7, 25, 19];
  const ba = (a: number | null, b: number | null) => `${pct(a)} → ${pct(b)}`;
  const lines = [fmtRow(head, w), fmtRow(['teacher', '', (teacher.params / 1e6).toFixed(3), (teacher.params_no_embedding / 1e6).toFixed(3),
    teacher.gflops.toFixed(4), pct(teacher.zeroshot), pct(teacher.retrieval)], w)];
  for (const r of rows) {
    lines.push(fmtRow([r.tower, r.criterion, (r.after.params / 1e6).toFixed(3), (r.after.params_no_embedding / 1e6).toFixed(3), r.after.gflops.toFixed(4),
      ba(r.before.zeroshot, r.after.zeroshot), ba(r.before.retrieval, r.after.retrieval)], w));
  }
  return lines.join('\n');
}

export async function runDemo(rt: Runtime, o: DemoOptions): Promise<{ teacher: ModelEval; rows: DemoRow[]; seconds: number }> {
  const t0 = performance.now();
  const seed = o.seed ?? 0;
  const criteria = o.criteria ?? ['mope', 'magnitude', 'taylor', 'random'];
  const towers = o.towers ?? ['vision', 'text'];
  const distill = { ...DEMO_DISTILL, ...o.distill };
  const { dir: teacher, source } = await teacherDir(rt, o);
  rt.log.info(`teacher: ${source}: ${teacher}`);
  const evalSpecs = [DEMO_EVAL.zeroshot, DEMO_EVAL.retrieval];
  const teacherEvalPath = join(o.out, 'teacher-eval.json');
  const fingerprint = modelFingerprint(loadCheckpoint(teacher));
  let teacherEval: ModelEval;
  // Everything that decides the runs' results; when it changes, earlier results in OUT do not apply.
  const settings = JSON.stringify({ teacher: fingerprint, zeroshotLimit: o.zeroshotLimit ?? null, distill, seed, calib: DEMO_CALIB });
  const prev = existsSync(teacherEvalPath) ? JSON.parse(readFileSync(teacherEvalPath, 'utf8')) as ModelEval & { settings?: string } : null;
  if (prev && prev.settings === settings) {
    teacherEval = prev;
    rt.log.info(`resuming ${o.out} (finished compressions are not redone)`);
  } else {
    if (prev) {
      // Only a folder this demo wrote (it holds teacher-eval.json) is cleared.
      rt.log.info(`${o.out} holds demo results of another teacher or other settings; starting over`);
      rmSync(o.out, { recursive: true, force: true });
    }
    rt.log.info('evaluating the teacher (zero-shot on fashion-mnist test, retrieval on 1,000 fashion-scenes test) …');
    const m = await loadEvalModel(rt, teacher);
    teacherEval = await evaluateModel(rt, { model: m.model, tokenizer: m.tokenizer as ClipTokenizer, preprocess: m.preprocess },
      openEvalSets(evalSpecs, o.zeroshotLimit, 0));
    writeJsonAtomic(teacherEvalPath, { ...teacherEval, settings });
  }
  rt.log.info(`teacher: zero-shot top-1 ${pct(teacherEval.zeroshot)} %, retrieval mean R@1 ${pct(teacherEval.retrieval)} %`);
  const rows: DemoRow[] = [];
  const total = towers.length * criteria.length;
  for (const tower of towers) {
    for (const criterion of criteria) {
      const k = rows.length + 1;
      rt.log.info(`\n== ${k}/${total}: ${tower} tower at half width, ${criterion} ==`);
      const run = join(o.out, `${tower}-${criterion}`);
      const s = await compress(rt, {
        model: teacher, data: 'builtin:fashion-mix:train', calib: DEMO_CALIB.pairs, calibZeroshot: DEMO_CALIB.classes, calibLimit: DEMO_CALIB.limit,
        stage: 'finetune', tower, keepHeads: 0.5, keepFfn: 0.5, criterion, ffnGroupSize: 32, distill, eval: evalSpecs,
        evalLimit: o.zeroshotLimit, seed, out: run, teacherEval, logEvery: 10,
      });
      rows.push({ tower, criterion, before: s.evals.width!, after: s.evals['width-distilled'] ?? s.evals.width!, run, seconds: s.seconds });
      rt.log.info(`   ${tower}/${criterion}: zero-shot ${pct(s.evals.width!.zeroshot)} → ${pct(rows[rows.length - 1]!.after.zeroshot)} %, ` +
        `R@1 ${pct(s.evals.width!.retrieval)} → ${pct(rows[rows.length - 1]!.after.retrieval)} %`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  writeJsonAtomic(join(o.out, 'demo.json'), {
    teacher: { dir: teacher, source, eval: teacherEval, recipe: DEMO_RECIPE, command: teacherCommand(DEMO_RECIPE, 'DIR') },
    distill, calib: DEMO_CALIB, eval: evalSpecs, zeroshot_limit: o.zeroshotLimit ?? null, seed, rows, seconds,
  });
  writeDemoReport(join(o.out, 'report.html'), teacherEval, rows, { teacher, source, distill, seconds });
  return { teacher: teacherEval, rows, seconds };
}

function writeDemoReport(path: string, teacher: ModelEval, rows: DemoRow[], info: { teacher: string; source: string; distill: DistillSettings; seconds: number }): void {
  let body = '<h1>mope-clip demo: half-width compression of a small CLIP, four importance criteria</h1>';
  body += `<p class="note">Teacher ${escapeXml(info.source)} (<code>${escapeXml(info.teacher)}</code>). Each compressed model keeps half the ` +
    `heads and half the FFN neuron groups of every layer of one tower, chosen by the criterion, then is distilled from the teacher for ` +
    `${info.distill.steps} steps of ${info.distill.batch} pairs (the other tower frozen). Zero-shot: fashion-mnist test (a fixed subset when --zeroshot-limit is set), OpenAI 7-template ensemble; ` +
    `retrieval: 1,000 fashion-scenes test scenes. Wall time ${(info.seconds / 60).toFixed(1)} min.</p>`;
  for (const tower of ['vision', 'text'] as const) {
    const rs = rows.filter((r) => r.tower === tower);
    if (rs.length === 0) continue;
    const table: EvalRow[] = [{ label: 'teacher', eval: teacher }];
    for (const r of rs) table.push({ label: `${r.criterion}, pruned`, eval: r.before }, { label: `${r.criterion}, distilled`, eval: r.after });
    body += `<h2>${tower} tower at half width</h2>` + evalTable(table);
    body += scoreBars(`fig-${tower}-before`, `${tower}: pruned, before distillation`, [{ label: 'teacher', eval: teacher }, ...rs.map((r) => ({ label: r.criterion, eval: r.before }))]);
    body += scoreBars(`fig-${tower}-after`, `${tower}: after distillation`, [{ label: 'teacher', eval: teacher }, ...rs.map((r) => ({ label: r.criterion, eval: r.after }))]);
    body += lossChart(`fig-${tower}-loss`, `${tower}: distillation loss`, rs.map((r) => ({ name: r.criterion, dir: join(r.run, 'distill-width') })));
    body += `<p class="note">Per-run reports: ${rs.map((r) => `<a href="${escapeXml(`${tower}-${r.criterion}/report.html`)}">${escapeXml(r.criterion)}</a>`).join(' · ')}</p>`;
  }
  writeFileAtomic(path, page('mope-clip demo', body));
}
