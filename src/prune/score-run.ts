// One score run into a scores file: picks the shard's modules, skips those a resumed file already holds,
// scores the rest (MoPE, magnitude, Taylor or random) and appends each finished module atomically.
// Dims: M modules of the run (per tower: L layers, NH_l heads, ⌈F_l/N⌉ FFN groups, see modules.ts).
import { existsSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import { checkBatchMemory } from '../model/config.ts';
import type { ClipModel } from '../model/types.ts';
import { magnitude, randomScore } from './baselines.ts';
import { scoreMope, type Calibration } from './mope.ts';
import { taylorScores } from './taylor.ts';
import {
  enumerateModules,
  moduleKey,
  shardModules,
  type ModuleKind,
  type ModuleRef,
  type TowerName,
} from './modules.ts';
import type { Task } from './objective.ts';
import {
  SCORES_FORMAT,
  SCORES_VERSION,
  ScoresWriter,
  checkCompatible,
  modelFingerprint,
  modelGeometry,
  readScoresFile,
  type Metric,
  type ScoreEntry,
  type ScoresFile,
} from './scores-file.ts';

export interface ScoreRunOptions {
  out: string;
  modelPath: string;
  data: string | null;
  zeroshotData: string | null;
  limit: number | null;
  task: Task | null;
  metric: Metric;
  seed: number;
  towers: TowerName[];
  kinds: ModuleKind[];
  ffnGroupSize: number;
  shard: { index: number; count: number } | null;
  resume: boolean;
  batch?: number;
  variants?: number;
  /** Use the naive path (whole model per module). */
  naive?: boolean;
  /** Called after the scores file holds (done, total) of this run's modules. */
  onProgress?: (done: number, total: number) => void;
  /** Called after each module is written (tests use it to simulate a kill). */
  afterWrite?: (e: ScoreEntry) => void;
}

/** Runs (or resumes) a score run; returns the final file contents. Needs `cal` for metric mope. */
export function runScore(rt: Runtime, model: ClipModel, cal: Calibration | null, o: ScoreRunOptions): ScoresFile {
  if (o.batch !== undefined) checkBatchMemory(model.config, o.batch, '--batch', o.metric === 'taylor');
  const all = enumerateModules(model, { towers: o.towers, kinds: o.kinds, ffnGroupSize: o.ffnGroupSize });
  const mods = shardModules(all, o.shard);
  const header: ScoresFile = {
    format: SCORES_FORMAT,
    version: SCORES_VERSION,
    model: { path: o.modelPath, fingerprint: modelFingerprint(model), geometry: modelGeometry(model) },
    data: o.data,
    zeroshot_data: o.zeroshotData,
    limit: o.limit,
    task: o.task,
    metric: o.metric,
    seed: o.seed,
    towers: [...o.towers],
    granularity: [...o.kinds],
    ffn_group_size: o.ffnGroupSize,
    shard: o.shard,
    base: null,
    expected_modules: mods.length,
    complete: false,
    modules: [],
    cost: { layer_forwards: 0, naive_layer_forwards: 0, seconds: 0 },
  };
  let file = header;
  if (existsSync(o.out)) {
    const prev = readScoresFile(o.out);
    if (o.resume) {
      checkCompatible(prev, header, o.out, 'this run', true);
      file = { ...prev, model: header.model, expected_modules: mods.length };
    } else if (!prev.complete) {
      throw new ConfigError(
        `${o.out} holds an unfinished run (${prev.modules.length} of ${prev.expected_modules} modules); pass --resume to continue it, ` +
          'or delete the file to start over',
      );
    }
  }
  const writer = new ScoresWriter(o.out, file);
  const todo = mods.filter((m) => !writer.has(m));
  const doneBefore = mods.length - todo.length;
  o.onProgress?.(doneBefore, mods.length);
  const mag = (m: ModuleRef) => magnitude(model, m, o.ffnGroupSize);

  if (o.metric === 'mope' && todo.length === 0 && file.base !== null) {
    // A resumed run with every module already scored: nothing to compute (its cost stays as recorded).
  } else if (o.metric === 'mope') {
    if (cal === null) throw new ConfigError('--metric mope needs calibration data (--data)');
    const res = scoreMope(rt, model, cal, todo, {
      ffnGroupSize: o.ffnGroupSize,
      batch: o.batch,
      variants: o.variants,
      naive: o.naive,
      onModule: (s, cost) => {
        const e: ScoreEntry = {
          tower: s.tower,
          kind: s.kind,
          layer: s.layer,
          index: s.index,
          mope: s.mope,
          loss_increase: s.loss_increase,
          magnitude: mag(s),
        };
        writer.add(e, cost);
        o.afterWrite?.(e);
      },
      onProgress: (d) => o.onProgress?.(doneBefore + d, mods.length),
      onBase: (base) => {
        const withBase = { ...file, base };
        if (file.base !== null) checkCompatible(file, withBase, o.out, 'this run', true);
        file.base = base;
        writer.flush();
      },
    });
    writer.setCost(res.cost);
  } else {
    const t0 = Date.now();
    if (o.metric === 'taylor' && cal === null)
      throw new ConfigError('--metric taylor needs calibration image-text pairs (--data)');
    const tay =
      o.metric === 'taylor'
        ? taylorScores(rt, model, cal!, todo, { batch: o.batch, ffnGroupSize: o.ffnGroupSize })
        : null;
    todo.forEach((m, i) => {
      const e: ScoreEntry = {
        tower: m.tower,
        kind: m.kind,
        layer: m.layer,
        index: m.index,
        mope: null,
        loss_increase: null,
        magnitude: mag(m),
      };
      if (o.metric === 'random') e.random = randomScore(m, o.seed);
      if (tay) e.taylor = tay.get(moduleKey(m))!;
      writer.file.modules.push(e);
      o.onProgress?.(doneBefore + i + 1, mods.length);
    });
    writer.setCost({ layer_forwards: 0, naive_layer_forwards: 0, seconds: (Date.now() - t0) / 1000 });
  }
  writer.finish();
  return writer.file;
}
