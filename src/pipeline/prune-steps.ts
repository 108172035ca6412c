// The pruning steps of the compress pipeline: score modules with a criterion (MoPE, magnitude, Taylor, random) into a
// scores file, prune width (heads and FFN groups: a fraction per tower, per layer or over the whole tower), and prune
// depth one layer at a time, re-scoring the layers of the pruned model after every removal (one-shot layer scores
// misjudge joint removals). Criterion scratch: the shape magnitude would choose, weights re-initialised afterwards.
// Dims: per tower L layers, NH_l heads, F_l FFN width, N FFN group size.
import { join } from 'node:path';
import type { Runtime } from '../engine/runtime.ts';
import { ConfigError } from '../errors.ts';
import type { ClipModel } from '../model/types.ts';
import type { Calibration } from '../prune/mope.ts';
import { towerConfig, type ModuleKind, type TowerName } from '../prune/modules.ts';
import type { Task } from '../prune/objective.ts';
import { makePlan, type PrunePlan, type Scope } from '../prune/plan.ts';
import { runScore } from '../prune/score-run.ts';
import type { Metric, ScoresFile } from '../prune/scores-file.ts';
import { pruneModel } from '../prune/structural.ts';
import { towerValue, type TowerValues } from '../prune/tower-values.ts';

export type Criterion = 'mope' | 'magnitude' | 'taylor' | 'random' | 'scratch';
export const CRITERIA: readonly Criterion[] = ['mope', 'magnitude', 'taylor', 'random', 'scratch'];

/** The scores metric a criterion ranks modules by (scratch: magnitude picks the shape; the weights are then fresh). */
export const metricOf = (c: Criterion): Metric => (c === 'scratch' ? 'magnitude' : c);

export function parseCriterion(s: string): Criterion {
  if ((CRITERIA as readonly string[]).includes(s)) return s as Criterion;
  throw new ConfigError(`--criterion expects ${CRITERIA.join(', ')}, found "${s}"`);
}

/** Criteria whose scores need calibration batches. */
export const needsCalibration = (c: Criterion): boolean => c === 'mope' || c === 'taylor';

export interface ScoreStepOptions {
  criterion: Criterion;
  /** Scores file to write. */
  out: string;
  /** Names the scored model in the file (a folder, or a description of an in-memory stage). */
  modelPath: string;
  towers: TowerName[];
  kinds: ModuleKind[];
  ffnGroupSize: number;
  seed: number;
  task: Task;
  calibSpec: string | null;
  calibZeroshotSpec: string | null;
  calibLimit: number | null;
  onProgress?: (done: number, total: number) => void;
}

/** Scores the modules of `model` (calibration needed for MoPE and Taylor). A finished file from an earlier run is redone. */
export function scoreStep(rt: Runtime, model: ClipModel, cal: Calibration | null, o: ScoreStepOptions): ScoresFile {
  if (needsCalibration(o.criterion) && cal === null)
    throw new ConfigError(`--criterion ${o.criterion} needs --calib SPEC`);
  return runScore(rt, model, cal, {
    out: o.out,
    modelPath: o.modelPath,
    data: o.calibSpec,
    zeroshotData: o.calibZeroshotSpec,
    limit: o.calibLimit,
    task: needsCalibration(o.criterion) ? o.task : null,
    metric: metricOf(o.criterion),
    seed: o.seed,
    towers: o.towers,
    kinds: o.kinds,
    ffnGroupSize: o.ffnGroupSize,
    shard: null,
    resume: true,
    onProgress: o.onProgress,
  });
}

/**
 * Removes the lowest-ranked heads and FFN groups of each tower: keepHeads / keepFfn are fractions (one for every
 * tower, or per tower; 1 or absent = keep all), taken in every layer (per-layer) or over the tower's layers (global).
 */
export function pruneWidth(
  model: ClipModel,
  scores: ScoresFile,
  towers: TowerName[],
  keepHeads: TowerValues,
  keepFfn: TowerValues,
  scope: Scope = 'per-layer',
): ClipModel {
  const plan: PrunePlan = {};
  for (const t of towers) {
    const h = towerValue(keepHeads, t) ?? 1,
      f = towerValue(keepFfn, t) ?? 1;
    if (h >= 1 && f >= 1) continue;
    Object.assign(
      plan,
      makePlan(model, scores, {
        towers: [t],
        keepHeads: h < 1 ? h : undefined,
        keepFfn: f < 1 ? f : undefined,
        scope,
        minHeads: 1,
      }),
    );
  }
  return Object.keys(plan).length === 0 ? model : pruneModel(model, plan);
}

export interface DepthStep {
  tower: TowerName;
  /** Layers before this removal. */
  layers_before: number;
  /** Index (in the model before this removal) and original index of the removed layer. */
  removed: number;
  removed_original: number;
  scores: string;
}

/**
 * Removes layers from each tower, one at a time, until `keepLayers` remain (one count for every tower or per tower;
 * a tower without a count keeps its layers): score the tower's layers on the current
 * model, drop the lowest-ranked one, repeat. Scores files go to dir/depth-<tower>-<k>.json.
 */
export function pruneDepth(
  rt: Runtime,
  model: ClipModel,
  cal: Calibration | null,
  towers: TowerName[],
  keepLayersIn: TowerValues,
  dir: string,
  base: Omit<ScoreStepOptions, 'out' | 'towers' | 'kinds' | 'modelPath'>,
  log: (msg: string) => void,
): { model: ClipModel; steps: DepthStep[] } {
  const steps: DepthStep[] = [];
  for (const tower of towers) {
    const L0 = towerConfig(model, tower).heads.length;
    const keepLayers = towerValue(keepLayersIn, tower) ?? L0;
    if (!Number.isInteger(keepLayers) || keepLayers < 1 || keepLayers > L0) {
      throw new ConfigError(
        `--keep-layers expects an integer in [1, ${L0}] (the ${tower} tower has ${L0} layers), found ${keepLayers}`,
      );
    }
    for (let k = 1; towerConfig(model, tower).heads.length > keepLayers; k++) {
      const cfg = towerConfig(model, tower),
        L = cfg.heads.length;
      const out = join(dir, `depth-${tower}-${k}.json`);
      const scores = scoreStep(rt, model, cal, {
        ...base,
        out,
        towers: [tower],
        kinds: ['layer'],
        modelPath: `${tower} tower at ${L} layers`,
      });
      const plan = makePlan(model, scores, { towers: [tower], keepLayers: L - 1, scope: 'per-layer', minHeads: 1 });
      const kept = new Set(plan[tower]!.layers);
      const removed = Array.from({ length: L }, (_, l) => l).find((l) => !kept.has(l))!;
      steps.push({ tower, layers_before: L, removed, removed_original: cfg.layerMap[removed]!, scores: out });
      log(`  ${tower}: removed layer ${removed} (original ${cfg.layerMap[removed]}), ${L - 1} left`);
      model = pruneModel(model, plan);
    }
  }
  return { model, steps };
}
