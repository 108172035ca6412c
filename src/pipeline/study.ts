// `mope-clip study`: a grid of compress runs — criteria × targets × seeds — with one budget, resumable. Each run is
// a compress run folder OUT/runs/<target>/<criterion>/seed-<s>/ (itself resumable stage by stage); a run whose
// summary.json exists is finished and skipped. After every run OUT/study.json (settings, every run, the table of
// mean ± std per target and criterion) and OUT/report.html are rewritten, so a killed study loses at most the run in
// progress. Targets: widthNN keeps NN % of the heads and FFN groups of every compressed tower; +depthMM also keeps
// round(MM % of its layers) (at least one). Runs with the same criterion, seed and width share the width scores.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError } from '../errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { loadCheckpoint } from '../io/checkpoint.ts';
import { parseTowers, type TowerName } from '../prune/modules.ts';
import type { Scope } from '../prune/plan.ts';
import { modelFingerprint, readScoresFile } from '../prune/scores-file.ts';
import { compress, SUMMARY_FILE, type CompressSummary, type DistillSettings } from './compress.ts';
import { evaluateModel, openEvalSets, type ModelEval } from './evaluate.ts';
import { needsCalibration, type Criterion } from './prune-steps.ts';
import { studyTable, writeStudyReport, type StudyRun } from './study-report.ts';
import { loadEvalModel } from '../eval/run.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import type { TeacherCache, TeacherCacheOptions } from '../train/teacher-cache.ts';
export { studyTable, formatStudyTable, type StudyCell, type StudyRun } from './study-report.ts';

export const STUDY_FILE = 'study.json';
export const STUDY_FORMAT = 'mope-clip-study';

export interface StudyTarget {
  name: string;
  /** Fraction of heads and of FFN groups kept. */
  width: number;
  /** Fraction of layers kept (null = no depth pruning). */
  depth: number | null;
}

/** widthNN or widthNN+depthMM (NN, MM in 1…100). */
export function parseTarget(s: string): StudyTarget {
  const m = /^width(\d{1,3})(?:\+depth(\d{1,3}))?$/.exec(s.trim());
  const pc = (v: string) => Number(v) / 100;
  const bad = (v: string | undefined) => v !== undefined && (Number(v) < 1 || Number(v) > 100);
  if (!m || bad(m[1]) || bad(m[2])) {
    throw new ConfigError(`--targets expects widthNN or widthNN+depthMM (NN, MM percentages in 1…100), found "${s}"`);
  }
  return { name: s.trim(), width: pc(m[1]!), depth: m[2] === undefined ? null : pc(m[2]) };
}

/** Layers a tower of L layers keeps at depth fraction f: round(f·L), at least 1. */
export const keptLayers = (L: number, f: number): number => Math.max(1, Math.round(f * L));

export interface StudyOptions {
  model: string;
  teacher?: string;
  data: string;
  calib: string | null;
  calibZeroshot?: string | null;
  calibZeroshotWeight?: number;
  calibLimit: number;
  stage: 'finetune' | 'pretrain';
  tower: 'vision' | 'text' | 'both';
  criteria: Criterion[];
  targets: StudyTarget[];
  seeds: number[];
  ffnGroupSize: number;
  scope?: Scope;
  distill: DistillSettings;
  eval: string[];
  evalLimit?: number;
  templates?: readonly string[];
  out: string;
  logEvery?: number;
  /**
   * Teacher outputs kept per training item and shared by all runs (one in-memory cache for the teacher: runs of the
   * same seed distil on the same items, so after the first they find the teacher's outputs); null = none.
   */
  teacherCache?: TeacherCacheOptions | null;
  /**
   * Only gather the finished runs into study.json / report.html, run nothing (e.g. after several processes ran
   * disjoint seeds into the same folder).
   */
  collectOnly?: boolean;
  /** Called after each run is finished and recorded (tests simulate a kill by throwing here). */
  afterRun?: (r: StudyRun) => void;
}

export interface StudyFile {
  format: typeof STUDY_FORMAT;
  version: 1;
  settings: Record<string, unknown>;
  grid: { criteria: Criterion[]; targets: string[]; seeds: number[] };
  teacher: ModelEval;
  runs: StudyRun[];
  table: ReturnType<typeof studyTable>;
  seconds: number;
}

const runDir = (out: string, target: string, criterion: string, seed: number) =>
  join(out, 'runs', target, criterion, `seed-${seed}`);

function toRun(s: CompressSummary, target: string, seed: number, dir: string, teacher: ModelEval): StudyRun {
  const pruned = s.evals.depth ?? s.evals.width!;
  const distilled = s.evals.final ?? s.evals['width-distilled'] ?? pruned;
  const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);
  return {
    criterion: s.criterion,
    target,
    seed,
    dir,
    pruned,
    distilled,
    recovery: {
      zeroshot: ratio(distilled.zeroshot, teacher.zeroshot),
      retrieval: ratio(distilled.retrieval, teacher.retrieval),
    },
    seconds: s.seconds,
  };
}

/** Runs (or resumes) the grid; returns the study file also written to OUT/study.json. */
export async function runStudy(rt: Runtime, o: StudyOptions): Promise<StudyFile> {
  const t0 = performance.now();
  if (o.criteria.length === 0 || o.targets.length === 0 || o.seeds.length === 0) {
    throw new ConfigError('study needs at least one criterion, target and seed');
  }
  const towers = parseTowers(o.tower);
  const sharedCache = o.teacherCache ? { ...o.teacherCache, shared: new Map<string, TeacherCache>() } : null;
  if (o.criteria.some(needsCalibration) && o.calib === null) {
    throw new ConfigError('study: criteria mope and taylor need --calib SPEC');
  }
  const teacherDir = o.teacher ?? o.model;
  const start = loadCheckpoint(o.model);
  const L: Record<TowerName, number> = {
    text: start.config.text.heads.length,
    vision: start.config.vision.heads.length,
  };
  // Everything that decides a run's figures except the grid itself; a rerun with other settings is refused.
  const settings = {
    model: o.model,
    model_fingerprint: modelFingerprint(start),
    teacher: teacherDir,
    data: o.data,
    calib: o.calib,
    calib_zeroshot: o.calibZeroshot ?? null,
    calib_zeroshot_weight: o.calibZeroshotWeight ?? null,
    calib_limit: o.calibLimit,
    stage: o.stage,
    tower: o.tower,
    ffn_group_size: o.ffnGroupSize,
    scope: o.scope ?? 'per-layer',
    distill: o.distill,
    eval: o.eval,
    eval_limit: o.evalLimit ?? null,
    templates: o.templates ?? null,
  };
  mkdirSync(o.out, { recursive: true });
  const path = join(o.out, STUDY_FILE);
  let teacherEval: ModelEval | undefined;
  if (existsSync(path)) {
    const prev = JSON.parse(readFileSync(path, 'utf8')) as StudyFile;
    if (prev.format !== STUDY_FORMAT) {
      throw new ConfigError(`${path}: not a study file (format ${JSON.stringify(prev.format)})`);
    }
    const now = settings as Record<string, unknown>;
    const diff = Object.keys({ ...prev.settings, ...now }).filter(
      (k) => JSON.stringify(prev.settings[k]) !== JSON.stringify(now[k]),
    );
    if (diff.length > 0) {
      throw new ConfigError(
        `${o.out} holds a study with other settings (${diff.join(', ')}); ` +
          'rerun with the same settings to resume it, or choose another --out.',
      );
    }
    teacherEval = prev.teacher;
  }
  if (teacherEval === undefined) {
    rt.log.info(`study: evaluating the teacher ${teacherDir} …`);
    const m = await loadEvalModel(rt, teacherDir);
    const files = { model: m.model, tokenizer: m.tokenizer as ClipTokenizer, preprocess: m.preprocess };
    teacherEval = await evaluateModel(rt, files, openEvalSets(o.eval, o.evalLimit, 0), { templates: o.templates });
  }
  const grid = { criteria: o.criteria, targets: o.targets.map((t) => t.name), seeds: o.seeds };
  const runs: StudyRun[] = [];
  const write = () => {
    const file: StudyFile = {
      format: STUDY_FORMAT,
      version: 1,
      settings,
      grid,
      teacher: teacherEval!,
      runs,
      table: studyTable(runs, teacherEval!, grid),
      seconds: (performance.now() - t0) / 1000,
    };
    writeJsonAtomic(path, file);
    writeStudyReport(join(o.out, 'report.html'), file);
    return file;
  };
  write();
  const total = o.seeds.length * o.targets.length * o.criteria.length;
  let k = 0;
  for (const seed of o.seeds) {
    for (const target of o.targets) {
      for (const criterion of o.criteria) {
        k++;
        const dir = runDir(o.out, target.name, criterion, seed);
        const done = join(dir, SUMMARY_FILE);
        if (existsSync(done)) {
          const summary = JSON.parse(readFileSync(done, 'utf8')) as CompressSummary;
          runs.push(toRun(summary, target.name, seed, dir, teacherEval));
          rt.log.info(`study ${k}/${total}: ${target.name} ${criterion} seed ${seed}: finished earlier, skipped`);
          continue;
        }
        if (o.collectOnly) continue;
        rt.log.info(`\n== study ${k}/${total}: ${target.name}, ${criterion}, seed ${seed} ==`);
        shareWidthScores(o, target, criterion, seed, dir);
        const keepLayers =
          target.depth === null
            ? undefined
            : Object.fromEntries(towers.map((t) => [t, keptLayers(L[t], target.depth!)]));
        const s = await compress(rt, {
          model: o.model,
          teacher: o.teacher,
          data: o.data,
          calib: needsCalibration(criterion) ? o.calib : null,
          calibZeroshot: needsCalibration(criterion) ? o.calibZeroshot : null,
          calibZeroshotWeight: needsCalibration(criterion) ? o.calibZeroshotWeight : undefined,
          calibLimit: o.calibLimit,
          stage: o.stage,
          tower: o.tower,
          keepHeads: target.width,
          keepFfn: target.width,
          keepLayers,
          scope: o.scope,
          criterion,
          ffnGroupSize: o.ffnGroupSize,
          distill: o.distill,
          eval: o.eval,
          evalLimit: o.evalLimit,
          templates: o.templates,
          seed,
          out: dir,
          teacherEval,
          logEvery: o.logEvery,
          teacherCache: sharedCache,
        });
        const r = toRun(s, target.name, seed, dir, teacherEval);
        runs.push(r);
        write();
        o.afterRun?.(r);
      }
    }
  }
  return write();
}

/**
 * A run whose width scores another finished target already computed (same criterion, seed and width) starts from a
 * copy of them; compress checks the copy is compatible (model, data, limit, seed, metric) before using it.
 */
function shareWidthScores(o: StudyOptions, target: StudyTarget, criterion: Criterion, seed: number, dir: string): void {
  if (!needsCalibration(criterion)) return;
  const dst = join(dir, 'scores', 'width.json');
  if (existsSync(dst)) return;
  for (const other of o.targets) {
    if (other.name === target.name || other.width !== target.width) continue;
    const src = join(runDir(o.out, other.name, criterion, seed), 'scores', 'width.json');
    if (existsSync(src) && readScoresFile(src).complete) {
      mkdirSync(join(dir, 'scores'), { recursive: true });
      copyFileSync(src, dst);
      return;
    }
  }
}
