// `mope-clip demo`: the README's first command, a small study. Gets the small teacher (shipped in
// assets/demo-teacher, else cached in .cache/demo, else trained from scratch), then runs `mope-clip study` on builtin
// data: both towers compressed at once (pretrain stage) to two targets — half the heads and FFN groups (width50), and
// that plus half the layers (width50+depth50) — with MoPE, magnitude, random and scratch (the same pruned shape
// re-initialised), each distilled with one budget, over several seeds. Prints the table of mean ± std; OUT/study.json,
// OUT/table.md, OUT/report.html. Resumable: a rerun skips finished runs; more --seeds extend the grid.
// Dims: see teacher.ts.
import { defaultTeacherCacheBytes } from '../train/teacher-cache.ts';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import type { DistillSettings } from './compress.ts';
import type { Criterion } from './prune-steps.ts';
import { markdownStudyTable } from './study-report.ts';
import { parseTarget, runStudy, type StudyFile } from './study.ts';
import { PACKAGE_DIR, hasShippedTeacher, trainTeacher, unpackShippedTeacher } from './teacher.ts';

export interface DemoOptions {
  out: string;
  /** Teacher cache (default PACKAGE_DIR/.cache/demo). */
  cacheDir?: string;
  /** Train the teacher from scratch even when a shipped or cached one exists. */
  retrainTeacher?: boolean;
  criteria?: Criterion[];
  targets?: string[];
  seeds?: number[];
  /** Distillation budget per compressed model. */
  distill?: Partial<DistillSettings>;
  /** Zero-shot images evaluated (a fixed subset of the 7,000 test images). */
  zeroshotLimit?: number;
  calibLimit?: number;
  /** Run nothing; gather the finished runs (see StudyOptions.collectOnly). */
  collectOnly?: boolean;
}

export const DEMO_CRITERIA: Criterion[] = ['mope', 'magnitude', 'random', 'scratch'];
export const DEMO_TARGETS = ['width50', 'width50+depth50'];
export const DEMO_SEEDS = [0, 1, 2];
export const DEMO_DISTILL: DistillSettings = {
  steps: 80,
  batch: 64,
  lr: 5e-4,
  weightDecay: 0.05,
  warmup: 5,
  gradClip: 1,
};
export const DEMO_EVAL = {
  zeroshot: 'builtin:fashion-mnist:test',
  retrieval: 'builtin:fashion-scenes:test',
  limit: 1000,
};
export const DEMO_CALIB = { pairs: 'builtin:fashion-scenes:val', limit: 256 };
export const DEMO_DATA = 'builtin:fashion-mix:train';

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
  rt.log.info(
    `teacher trained in ${(r.seconds / 60).toFixed(1)} min wall, ${(r.cpuSeconds / 60).toFixed(1)} min CPU (${r.zeroed} untouched token rows zeroed) → ${dir}`,
  );
  return { dir, source: 'trained now' };
}

export async function runDemo(rt: Runtime, o: DemoOptions): Promise<StudyFile> {
  const { dir: teacher, source } = await teacherDir(rt, o);
  rt.log.info(`teacher: ${source}: ${teacher}`);
  const f = await runStudy(rt, {
    model: teacher,
    data: DEMO_DATA,
    calib: DEMO_CALIB.pairs,
    calibLimit: o.calibLimit ?? DEMO_CALIB.limit,
    stage: 'pretrain',
    tower: 'both',
    criteria: o.criteria ?? DEMO_CRITERIA,
    targets: (o.targets ?? DEMO_TARGETS).map(parseTarget),
    seeds: o.seeds ?? DEMO_SEEDS,
    ffnGroupSize: 32,
    distill: { ...DEMO_DISTILL, ...o.distill },
    eval: [DEMO_EVAL.zeroshot, DEMO_EVAL.retrieval],
    evalLimit: o.zeroshotLimit ?? DEMO_EVAL.limit,
    out: o.out,
    logEvery: 20,
    collectOnly: o.collectOnly,
    // The runs of a seed distil on the same items: the teacher's outputs are computed by the first and reused.
    teacherCache: { memoryBytes: defaultTeacherCacheBytes() },
  });
  writeFileAtomic(join(o.out, 'table.md'), markdownStudyTable(f.table, f.teacher) + '\n');
  return f;
}
