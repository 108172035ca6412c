// `mope-clip compress`: the MoPE-CLIP pipeline as resumable stages in one run folder. Fine-tuning stage (one tower):
// width scores → prune width → distil from the teacher → remove layers one at a time, re-scoring after each removal →
// distil → evaluate. Pre-training stage (both towers): width scores → prune width → depth removal → one distillation.
// Every stage writes into RUN_DIR (scores/, model folders, eval/*.json, report.html) and is recorded in stages.json.
// The model compressed (--model) and the teacher it is distilled from (--teacher, default the same) may differ; the
// width and the final distillation have their own step budgets. Criterion scratch re-initialises the pruned towers.
// Dims: per tower L layers, NH_l heads, F_l FFN width.
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError } from '../errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { openDataset } from '../data/spec.ts';
import { loadEvalModel } from '../eval/run.ts';
import { DEFAULT_LOSS_WEIGHTS, type LossWeights } from '../distill/losses.ts';
import type { ClipTokenizer } from '../io/tokenizer.ts';
import type { ClipModel } from '../model/types.ts';
import { loadCalibration } from '../prune/calibration.ts';
import type { Calibration } from '../prune/mope.ts';
import { parseTowers, type TowerName } from '../prune/modules.ts';
import type { Scope } from '../prune/plan.ts';
import { reinitTowers } from '../prune/scratch.ts';
import { isFraction, isPositiveInt, towerValue, type TowerValues } from '../prune/tower-values.ts';
import type { Task } from '../prune/objective.ts';
import { modelFingerprint, readScoresFile } from '../prune/scores-file.ts';
import { writeModelFolder, type ModelFiles } from '../train/checkpoint.ts';
import { checkDistillable } from '../train/distill-check.ts';
import { trainLoop } from '../train/loop.ts';
import { TeacherCache, type TeacherCacheOptions } from '../train/teacher-cache.ts';
import { evaluateModel, openEvalSets, type EvalSet, type ModelEval } from './evaluate.ts';
import {
  needsCalibration,
  pruneDepth,
  pruneWidth,
  scoreStep,
  type Criterion,
  type ScoreStepOptions,
} from './prune-steps.ts';
import { writeCompressReport, type CompressSummary } from './compress-report.ts';
export type { CompressSummary } from './compress-report.ts';
import { StageLedger } from './stages.ts';
import { RankedStages } from './ranked-stages.ts';
import { SINGLE_WORLD, type World } from '../parallel/world.ts';
import { progressCallback } from '../ui/progress.ts';

export interface DistillSettings {
  /** Steps of each distil stage unless widthSteps / finalSteps say otherwise. */
  steps: number;
  /** Steps of the distillation after width pruning (finetune stage; default steps). */
  widthSteps?: number;
  /** Steps of the final distillation (after depth pruning, or the pretrain stage's only one; default steps). */
  finalSteps?: number;
  batch: number;
  lr: number;
  weightDecay: number;
  warmup: number;
  gradClip: number;
  /** Loss weights given (the rest: the defaults of src/parallelill/losses.ts). */
  loss?: Partial<LossWeights>;
}

export interface CompressOptions {
  /**
   * Data-parallel group (default: this process alone): distil stages train on every rank, every other stage runs
   * on rank 0 alone, and only rank 0 writes the run folder.
   */
  world?: World;
  /** Checkpoint folder of the model being compressed. */
  model: string;
  /** Teacher checkpoint folder the students are distilled from and compared with (default: model). */
  teacher?: string;
  /** Distillation pairs. */
  data: string;
  /** Calibration SPEC: pairs → retrieval MoPE, classification → zero-shot MoPE; with calibZeroshot → both. */
  calib: string | null;
  calibZeroshot?: string | null;
  /** Weight w of zero-shot Z in the mixed Z = (1 − w)·Z_retrieval + w·Z_zeroshot (with calibZeroshot; default ½). */
  calibZeroshotWeight?: number;
  calibLimit: number;
  stage: 'finetune' | 'pretrain';
  tower: 'vision' | 'text' | 'both';
  /** Fraction of heads kept: one for every compressed tower or per tower. */
  keepHeads: TowerValues;
  keepFfn: TowerValues;
  /** Layers kept per compressed tower, one count or per tower (undefined = no depth pruning). */
  keepLayers?: TowerValues;
  /** Width fractions per layer (default) or over all layers of a tower. */
  scope?: Scope;
  criterion: Criterion;
  ffnGroupSize: number;
  distill: DistillSettings;
  /** Evaluation SPECs (classification → zero-shot top-1, pairs → retrieval mean R@1). */
  eval: string[];
  evalLimit?: number;
  templates?: readonly string[];
  seed: number;
  out: string;
  /** The teacher's figures when the caller already has them (the demo evaluates its teacher once). */
  teacherEval?: ModelEval;
  /** Logged progress lines every N distillation steps. */
  logEvery?: number;
  /** Per-item teacher outputs shared by the distil stages (null/absent = the teacher runs every step). */
  teacherCache?: TeacherCacheOptions | null;
  /** Told when a stage that runs now starts and ends. */
  onStage?: (name: string, phase: 'start' | 'end') => void;
}

export const SUMMARY_FILE = 'summary.json';

/**
 * Default calibration items: enough that two disjoint halves of the set rank the modules alike (split-half Spearman
 * measured on the builtin data in docs/calibration.md: attention heads ≥ 0.88 at 1,000 items; smaller sets give
 * MoPE scores that are mostly noise). 1,000 = all of builtin:fashion-scenes:val.
 */
export const DEFAULT_CALIB_LIMIT = 1000;

function taskOf(o: CompressOptions): { task: Task; pairs: string | null; cls: string | null } {
  if (o.calib === null) return { task: 'retrieval', pairs: null, cls: null };
  const kind = openDataset(o.calib, { limit: 1 }).dataset.kind;
  if (o.calibZeroshotWeight !== undefined && !o.calibZeroshot) {
    throw new ConfigError(
      '--calib-zeroshot-weight needs --calib-zeroshot SPEC (labelled images) for the zero-shot part of Z.',
    );
  }
  if (o.calibZeroshot) {
    if (kind !== 'pairs')
      throw new ConfigError(`--calib ${o.calib} must hold image-text pairs when --calib-zeroshot is given.`);
    return { task: 'both', pairs: o.calib, cls: o.calibZeroshot };
  }
  return kind === 'pairs'
    ? { task: 'retrieval', pairs: o.calib, cls: null }
    : { task: 'zeroshot', pairs: null, cls: o.calib };
}

function validate(o: CompressOptions, L: Record<TowerName, number>): TowerName[] {
  if (o.stage !== 'finetune' && o.stage !== 'pretrain')
    throw new ConfigError(`--stage expects finetune or pretrain, found "${o.stage}"`);
  const towers = parseTowers(o.tower);
  if (o.stage === 'finetune' && towers.length !== 1) {
    throw new ConfigError(
      '--stage finetune compresses one tower: pass --tower vision or --tower text (--tower both is the pretrain stage).',
    );
  }
  const named = (v: TowerValues | undefined, flag: string) => {
    if (v === undefined || typeof v === 'number') return;
    for (const t of Object.keys(v)) {
      if (!towers.includes(t as TowerName))
        throw new ConfigError(`${flag} names the ${t} tower, which this run does not compress (--tower ${o.tower})`);
    }
  };
  for (const [v, f] of [
    [o.keepHeads, '--keep-heads'],
    [o.keepFfn, '--keep-ffn'],
  ] as const) {
    named(v, f);
    for (const t of towers) {
      const x = towerValue(v, t);
      if (x !== undefined && !isFraction(x))
        throw new ConfigError(`${f} expects a number in (0, 1] for the ${t} tower, found ${x}`);
    }
  }
  named(o.keepLayers, '--keep-layers');
  for (const t of towers) {
    const k = towerValue(o.keepLayers, t);
    if (k !== undefined && (!isPositiveInt(k) || k > L[t])) {
      throw new ConfigError(
        `--keep-layers expects an integer in [1, ${L[t]}] (the ${t} tower has ${L[t]} layers), found ${k}`,
      );
    }
  }
  if (o.scope !== undefined && o.scope !== 'per-layer' && o.scope !== 'global')
    throw new ConfigError(`--scope expects per-layer or global, found "${o.scope}"`);
  const w = o.calibZeroshotWeight;
  if (w !== undefined && !(w >= 0 && w <= 1))
    throw new ConfigError(`--calib-zeroshot-weight expects a number in [0, 1], found ${w}`);
  if (needsCalibration(o.criterion) && o.calib === null)
    throw new ConfigError(`--criterion ${o.criterion} needs --calib SPEC (calibration data).`);
  for (const [v, f] of [
    [o.distill.steps, '--steps'],
    [o.distill.widthSteps, '--width-steps'],
    [o.distill.finalSteps, '--final-steps'],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0))
      throw new ConfigError(`${f} expects an integer ≥ 0, found ${v}`);
  }
  return towers;
}

async function loadFiles(rt: Runtime, dir: string): Promise<ModelFiles> {
  const m = await loadEvalModel(rt, dir);
  return { model: m.model, tokenizer: m.tokenizer as ClipTokenizer, preprocess: m.preprocess, auxFrom: dir };
}

/** Runs (or resumes) the pipeline; returns the summary also written to RUN_DIR/summary.json. */
export async function compress(rt: Runtime, o: CompressOptions): Promise<CompressSummary> {
  const t0 = performance.now();
  const start = await loadFiles(rt, o.model);
  const teacherDir = o.teacher ?? o.model;
  const teacher = teacherDir === o.model ? start : await loadFiles(rt, teacherDir);
  const sc = start.model.config,
    tc = teacher.model.config;
  const towers = validate(o, { text: sc.text.heads.length, vision: sc.vision.heads.length });
  const { task, pairs, cls } = taskOf(o);
  const depth = towers.some((t) => (towerValue(o.keepLayers, t) ?? sc[t].heads.length) < sc[t].heads.length);
  const finetune = o.stage === 'finetune';
  const widthSteps = o.distill.widthSteps ?? o.distill.steps,
    finalSteps = o.distill.finalSteps ?? o.distill.steps;
  const plan = ['eval-teacher', 'score-width', 'prune-width', 'eval-width'];
  if (finetune && widthSteps > 0) plan.push('distill-width', 'eval-width-distilled');
  if (depth) plan.push('prune-depth', 'eval-depth');
  if (finalSteps > 0 && (depth || !finetune)) plan.push('distill-final', 'eval-final');
  plan.push('report');
  const options = {
    model: o.model,
    model_fingerprint: modelFingerprint(start.model),
    teacher: teacherDir,
    teacher_fingerprint: modelFingerprint(teacher.model),
    data: o.data,
    calib: o.calib,
    calib_zeroshot: o.calibZeroshot ?? null,
    calib_zeroshot_weight: o.calibZeroshotWeight ?? null,
    calib_limit: o.calibLimit,
    templates: o.templates ?? null,
    stage: o.stage,
    tower: o.tower,
    keep_heads: o.keepHeads,
    keep_ffn: o.keepFfn,
    keep_layers: o.keepLayers ?? null,
    scope: o.scope ?? 'per-layer',
    criterion: o.criterion,
    ffn_group_size: o.ffnGroupSize,
    distill: { ...o.distill, widthSteps, finalSteps },
    eval: o.eval,
    eval_limit: o.evalLimit ?? null,
    seed: o.seed,
  };
  const world = o.world ?? SINGLE_WORLD,
    lead = world.rank === 0;
  // rank 0 owns the ledger (creates or checks it first); the others follow it read-only
  const ledger = lead ? new StageLedger(o.out, options, plan, rt.log, false, o.onStage) : null;
  world.barrier();
  const stages = new RankedStages(world, ledger ?? new StageLedger(o.out, options, plan, rt.log, true));
  const R = (...p: string[]) => join(o.out, ...p);
  let evalSets: EvalSet[] | null = null;
  // The --eval-limit subset is fixed (seed 0), not the run's seed: runs of several seeds are compared on one test subset.
  const sets = () => (evalSets ??= openEvalSets(o.eval, o.evalLimit, 0));
  const evalStage = (name: string, dir: string) =>
    stages.lead(name, async () => {
      const e = await evaluateModel(rt, await loadFiles(rt, dir), sets(), { templates: o.templates });
      writeJsonAtomic(R('eval', `${name.replace(/^eval-/, '')}.json`), { model: dir, ...e });
      rt.log.info(`  ${name}: ${fmtEval(e)}`);
      return { model: dir, eval: e };
    });

  let cal: Calibration | null | undefined;
  const calibration = async (): Promise<Calibration | null> => {
    if (cal !== undefined) return cal;
    if (!needsCalibration(o.criterion)) return (cal = null);
    rt.log.info(
      `  loading calibration data (${o.calib}${o.calibZeroshot ? ` + ${o.calibZeroshot}` : ''}, ${o.calibLimit} items)`,
    );
    return (cal = await loadCalibration(start.model, {
      modelDir: o.model,
      task,
      data: pairs ?? undefined,
      zeroshotData: cls ?? undefined,
      limit: o.calibLimit,
      seed: o.seed,
      templates: o.templates,
      zeroshotWeight: o.calibZeroshotWeight,
    }));
  };
  const scoreBase: Omit<ScoreStepOptions, 'out' | 'towers' | 'kinds' | 'modelPath'> = {
    criterion: o.criterion,
    ffnGroupSize: o.ffnGroupSize,
    seed: o.seed,
    task,
    calibSpec: pairs,
    calibZeroshotSpec: cls,
    calibLimit: o.calibLimit,
    // one bar per scoring run (width, then each depth step): on a TTY redrawn, in a log a line a minute
    onProgress: progressCallback('  score modules'),
  };

  const teacherEval = await stages.lead('eval-teacher', async () => {
    const e = o.teacherEval ?? (await evaluateModel(rt, teacher, sets(), { templates: o.templates }));
    writeJsonAtomic(R('eval', 'teacher.json'), { model: teacherDir, ...e });
    rt.log.info(`  teacher: ${fmtEval(e)}`);
    return { model: teacherDir, eval: e };
  });

  await stages.lead('score-width', async () => {
    const out = R('scores', 'width.json');
    const f = scoreStep(rt, start.model, await calibration(), {
      ...scoreBase,
      out,
      towers,
      kinds: ['head', 'ffn'],
      modelPath: o.model,
    });
    return { scores: out, modules: f.modules.length, seconds: f.cost.seconds };
  });

  const widthDir = R('width');
  await stages.lead('prune-width', async () => {
    let pruned = pruneWidth(
      start.model,
      readScoresFile(R('scores', 'width.json')),
      towers,
      o.keepHeads,
      o.keepFfn,
      o.scope,
    );
    // scratch: the same pruned shape with fresh weights in the compressed towers (seeded by --seed).
    if (o.criterion === 'scratch') pruned = reinitTowers(pruned, towers, o.seed);
    writeModelFolder({ ...start, model: pruned }, widthDir);
    return {
      model: widthDir,
      heads: shape(pruned, towers, 'heads'),
      ffn: shape(pruned, towers, 'ffn'),
      reinitialised: o.criterion === 'scratch',
    };
  });
  const ev: Record<string, ModelEval> = { teacher: teacherEval.eval as ModelEval };
  ev.width = (await evalStage('eval-width', widthDir)).eval as ModelEval;

  let cache: TeacherCache | null | undefined;
  let batchPerRank: number | null = null;
  const distil = async (name: string, from: string, dir: string, steps: number) => {
    const done = await stages.all(name, async () => {
      cache ??= o.teacherCache
        ? TeacherCache.open(teacher.model, o.teacherCache, String(rt.precision ?? 'fp32'))
        : null;
      const student = await loadFiles(rt, from);
      const freeze = finetune ? { text: !towers.includes('text'), vision: !towers.includes('vision') } : undefined;
      checkDistillable(tc, student.model.config, {
        wHid: lossWeights(o.distill).wHid,
        freeze,
        teacherName: teacherDir,
        studentName: from,
      });
      const d = o.distill;
      const r = await trainLoop(rt, {
        student,
        teacher: teacher.model,
        teacherCache: cache,
        data: openDataset(o.data).dataset,
        steps,
        batch: d.batch,
        optim: { lr: d.lr, weightDecay: d.weightDecay, warmup: d.warmup, gradClip: d.gradClip },
        loss: lossWeights(d),
        freeze,
        seed: o.seed,
        out: dir,
        resume: true,
        saveEvery: Math.max(50, Math.ceil(steps / 4)),
        logEvery: o.logEvery ?? 25,
        world,
        flags: { command: 'compress', teacher: teacherDir, data: o.data, batch: d.batch, lr: d.lr, seed: o.seed },
      });
      if (cache) rt.log.info(`  teacher cache: ${JSON.stringify(cache.stats)}`);
      return {
        model: dir,
        steps: r.steps,
        seconds: r.seconds,
        pairs_per_s: r.pairsPerSecond,
        last_loss: r.lastLoss,
        world_size: r.worldSize,
        batch_per_rank: r.rankBatch,
      };
    });
    batchPerRank = done.batch_per_rank;
  };

  let current = widthDir;
  if (plan.includes('distill-width')) {
    await distil('distill-width', widthDir, R('distill-width'), widthSteps);
    current = R('distill-width');
    ev['width-distilled'] = (await evalStage('eval-width-distilled', current)).eval as ModelEval;
  }
  let depthSteps: unknown[] = [];
  if (depth) {
    const depthDir = R('depth');
    const from = current;
    const r = await stages.lead('prune-depth', async () => {
      const from0 = await loadFiles(rt, from);
      const d = pruneDepth(rt, from0.model, await calibration(), towers, o.keepLayers!, R('scores'), scoreBase, (m) =>
        rt.log.info(m),
      );
      writeModelFolder({ ...from0, model: d.model }, depthDir);
      return { model: depthDir, steps: d.steps };
    });
    depthSteps = r.steps as unknown[];
    current = depthDir;
    ev.depth = (await evalStage('eval-depth', depthDir)).eval as ModelEval;
  }
  if (plan.includes('distill-final')) {
    await distil('distill-final', current, R('distill-final'), finalSteps);
    current = R('distill-final');
    ev.final = (await evalStage('eval-final', current)).eval as ModelEval;
  }
  const summary: CompressSummary = {
    out: o.out,
    criterion: o.criterion,
    towers,
    final_model: current,
    evals: ev,
    depth: depthSteps,
    batch_per_rank: batchPerRank,
    seconds: 0,
  };
  await stages.lead('report', async () => {
    writeCompressReport(R('report.html'), { options, summary, ledger: ledger!.file, runDir: o.out });
    return { report: R('report.html') };
  });
  summary.seconds = (performance.now() - t0) / 1000;
  if (lead) writeJsonAtomic(R(SUMMARY_FILE), summary);
  return summary;
}

function lossWeights(d: DistillSettings): LossWeights {
  return { ...DEFAULT_LOSS_WEIGHTS, ...d.loss };
}

function shape(m: ClipModel, towers: TowerName[], what: 'heads' | 'ffn'): Record<string, number[]> {
  return Object.fromEntries(towers.map((t) => [t, [...m.config[t][what]]]));
}

export function fmtEval(e: ModelEval): string {
  const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)} %`);
  return (
    `${(e.params / 1e6).toFixed(2)} M params (${(e.params_no_embedding / 1e6).toFixed(2)} M without token embeddings), ` +
    `${e.gflops.toFixed(3)} GFLOPs, zero-shot top-1 ${pct(e.zeroshot)}, retrieval mean R@1 ${pct(e.retrieval)}`
  );
}
