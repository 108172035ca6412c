// scores.json: the score run's identity (model fingerprint and geometry, data SPEC, task, metric, module set),
// base Z / loss, per-module scores, cost; atomic incremental writes, resume and shard merge checks.
// Dims: per tower L layers, NH_l heads, F_l FFN width (the geometry recorded to refuse other models).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';
import { writeJsonAtomic } from '../io/atomic.ts';
import { assertFiniteOutput } from '../io/finite.ts';
import type { ClipModel, LayerWeights, TowerConfig } from '../model/types.ts';
import { compareModules, moduleKey, type ModuleKind, type ModuleRef, type TowerName } from './modules.ts';
import type { Task } from './objective.ts';

export const SCORES_FORMAT = 'mope-clip-scores';
export const SCORES_VERSION = 1;

export type Metric = 'mope' | 'magnitude' | 'random' | 'taylor';

export interface ScoreEntry extends ModuleRef {
  /** Z(model) − Z(model without the module); null for baseline runs. */
  mope: number | null;
  loss_increase: number | null;
  magnitude?: number;
  random?: number;
  /** First-order Taylor importance Σ|w·∂L_con/∂w| (metric taylor). */
  taylor?: number;
}

export interface TowerGeometry {
  hidden: number;
  headDim: number;
  heads: number[];
  ffn: number[];
  layerMap: number[];
}

export interface ScoreCostTotals {
  layer_forwards: number;
  naive_layer_forwards: number;
  seconds: number;
}

export interface ScoresFile {
  format: typeof SCORES_FORMAT;
  version: number;
  model: {
    path: string;
    fingerprint: string;
    geometry: { text: TowerGeometry; vision: TowerGeometry; projectionDim: number };
  };
  data: string | null;
  zeroshot_data: string | null;
  limit: number | null;
  task: Task | null;
  metric: Metric;
  seed: number;
  towers: TowerName[];
  granularity: ModuleKind[];
  ffn_group_size: number;
  shard: { index: number; count: number } | null;
  base: { z: number; loss: number } | null;
  /** Modules this file holds when complete (this shard's share). */
  expected_modules: number;
  complete: boolean;
  modules: ScoreEntry[];
  cost: ScoreCostTotals;
}

function towerGeometry(t: TowerConfig): TowerGeometry {
  return { hidden: t.hidden, headDim: t.headDim, heads: [...t.heads], ffn: [...t.ffn], layerMap: [...t.layerMap] };
}

export function modelGeometry(model: ClipModel): ScoresFile['model']['geometry'] {
  return {
    text: towerGeometry(model.config.text),
    vision: towerGeometry(model.config.vision),
    projectionDim: model.config.projectionDim,
  };
}

/** sha256 over the geometry and every weight (fixed order), first 16 hex digits. */
export function modelFingerprint(model: ClipModel): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(modelGeometry(model)));
  const add = (a: Float32Array) => h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const layer = (w: LayerWeights) =>
    [w.ln1W, w.ln1B, w.qkvW, w.qkvB, w.outW, w.outB, w.ln2W, w.ln2B, w.fc1W, w.fc1B, w.fc2W, w.fc2B].forEach(add);
  const { text: t, vision: v, logitScale } = model.weights;
  [t.tokenEmbedding, t.positionEmbedding].forEach(add);
  t.layers.forEach(layer);
  [
    t.finalLnW,
    t.finalLnB,
    t.projection,
    v.classEmbedding,
    v.patchEmbedding,
    v.positionEmbedding,
    v.preLnW,
    v.preLnB,
  ].forEach(add);
  v.layers.forEach(layer);
  [v.postLnW, v.postLnB, v.projection, logitScale].forEach(add);
  return h.digest('hex').slice(0, 16);
}

/** Identity fields that must agree between a resumed file / merged shards and the run. */
const IDENTITY: Array<keyof ScoresFile> = [
  'data',
  'zeroshot_data',
  'limit',
  'task',
  'metric',
  'seed',
  'towers',
  'granularity',
  'ffn_group_size',
];

/** Throws ConfigError naming every identity field where a and b differ (aName / bName for the message). */
export function checkCompatible(a: ScoresFile, b: ScoresFile, aName: string, bName: string, checkShard: boolean): void {
  const diffs: string[] = [];
  if (a.model.fingerprint !== b.model.fingerprint) {
    diffs.push(
      `model (${a.model.path} fingerprint ${a.model.fingerprint} vs ${b.model.path} fingerprint ${b.model.fingerprint})`,
    );
  }
  for (const f of IDENTITY) {
    if (JSON.stringify(a[f]) !== JSON.stringify(b[f]))
      diffs.push(`${f} (${JSON.stringify(a[f])} vs ${JSON.stringify(b[f])})`);
  }
  if (checkShard && JSON.stringify(a.shard) !== JSON.stringify(b.shard))
    diffs.push(`shard (${JSON.stringify(a.shard)} vs ${JSON.stringify(b.shard)})`);
  if (
    a.base &&
    b.base &&
    (Math.abs(a.base.z - b.base.z) > 1e-4 || Math.abs(a.base.loss - b.base.loss) > 1e-4 * (1 + Math.abs(a.base.loss)))
  ) {
    diffs.push(
      `base Z / loss (${a.base.z}, ${a.base.loss} vs ${b.base.z}, ${b.base.loss}: the calibration data differ)`,
    );
  }
  if (diffs.length > 0) {
    throw new ConfigError(`${aName} and ${bName} come from different score runs: they differ in ${diffs.join('; ')}.`);
  }
}

function isNum(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** Reads and validates a scores file; a corrupt or foreign file is a ConfigError naming what is wrong. */
export function readScoresFile(path: string): ScoresFile {
  if (!existsSync(path)) throw new ConfigError(`${path}: scores file not found`);
  let j: ScoresFile;
  try {
    j = JSON.parse(readFileSync(path, 'utf8')) as ScoresFile;
  } catch (e) {
    throw new ConfigError(
      `${path}: not a valid scores file (JSON parse failed: ${(e as Error).message}); rerun mope-clip score`,
    );
  }
  const bad = (what: string): never => {
    throw new ConfigError(`${path}: corrupt scores file: ${what}; rerun mope-clip score to recreate it`);
  };
  if (j === null || typeof j !== 'object' || j.format !== SCORES_FORMAT) bad(`"format" is not "${SCORES_FORMAT}"`);
  if (j.version !== SCORES_VERSION) bad(`version ${String(j.version)} is not ${SCORES_VERSION}`);
  if (!j.model || typeof j.model.fingerprint !== 'string' || !j.model.geometry?.text || !j.model.geometry?.vision)
    bad('model identity missing');
  if (!Array.isArray(j.modules)) bad('"modules" is not a list');
  if (!Array.isArray(j.towers) || !Array.isArray(j.granularity) || !isNum(j.ffn_group_size))
    bad('towers / granularity / ffn_group_size missing');
  if (!j.cost || !isNum(j.cost.layer_forwards) || !isNum(j.cost.seconds)) bad('"cost" missing');
  const seen = new Set<string>();
  j.modules.forEach((m, i) => {
    if (!m || (m.tower !== 'text' && m.tower !== 'vision') || !['head', 'ffn', 'layer'].includes(m.kind))
      bad(`module ${i} has no valid tower / kind`);
    const g = j.model.geometry[m.tower];
    if (
      !Number.isInteger(m.layer) ||
      m.layer < 0 ||
      m.layer >= g.heads.length ||
      !Number.isInteger(m.index) ||
      m.index < 0
    ) {
      bad(`module ${i} (${moduleKey(m)}) is outside the recorded geometry`);
    }
    if (m.kind === 'head' && m.index >= g.heads[m.layer])
      bad(`module ${i} (${moduleKey(m)}): layer ${m.layer} has ${g.heads[m.layer]} heads`);
    if (j.metric === 'mope' && (!isNum(m.mope) || !isNum(m.loss_increase)))
      bad(`module ${i} (${moduleKey(m)}) has no numeric mope / loss_increase`);
    if (j.metric === 'magnitude' && !isNum(m.magnitude)) bad(`module ${i} (${moduleKey(m)}) has no numeric magnitude`);
    if (j.metric === 'random' && !isNum(m.random)) bad(`module ${i} (${moduleKey(m)}) has no numeric random value`);
    if (j.metric === 'taylor' && !isNum(m.taylor)) bad(`module ${i} (${moduleKey(m)}) has no numeric taylor value`);
    const k = moduleKey(m);
    if (seen.has(k)) bad(`module ${k} appears twice`);
    seen.add(k);
  });
  return j;
}

/** Keeps a scores file on disk up to date: every add() rewrites it atomically, so a kill loses nothing finished. */
export class ScoresWriter {
  private keys: Set<string>;
  private costBefore: ScoreCostTotals;

  constructor(
    readonly path: string,
    readonly file: ScoresFile,
  ) {
    this.keys = new Set(file.modules.map(moduleKey));
    this.costBefore = { ...file.cost };
  }

  has(m: ModuleRef): boolean {
    return this.keys.has(moduleKey(m));
  }

  /** Cost of this process so far, added to what the file held when the writer was made. */
  setCost(c: ScoreCostTotals): void {
    this.file.cost = {
      layer_forwards: this.costBefore.layer_forwards + c.layer_forwards,
      naive_layer_forwards: this.costBefore.naive_layer_forwards + c.naive_layer_forwards,
      seconds: Math.round((this.costBefore.seconds + c.seconds) * 1000) / 1000,
    };
  }

  add(e: ScoreEntry, cost?: ScoreCostTotals): void {
    const k = moduleKey(e);
    if (this.keys.has(k)) throw new Error(`scores writer: module ${k} written twice`);
    assertFiniteOutput(e, `${this.path}: score of module ${k}`);
    this.keys.add(k);
    this.file.modules.push(e);
    if (cost) this.setCost(cost);
    this.flush();
  }

  finish(): void {
    this.file.modules.sort(compareModules);
    this.file.complete = this.file.modules.length >= this.file.expected_modules;
    this.flush();
  }

  flush(): void {
    writeJsonAtomic(this.path, this.file);
  }
}

/**
 * Merges shard files of one run. Refuses files from other runs (model, data, task, metric, module set), a
 * different shard count, a shard given twice, or disagreeing duplicate modules. The result has shard null and
 * is complete when every shard 1…N is present and complete.
 */
export function mergeScores(files: Array<{ name: string; file: ScoresFile }>): ScoresFile {
  if (files.length === 0) throw new ConfigError('score merge needs at least one scores file');
  const first = files[0];
  const count = first.file.shard?.count ?? 1;
  const seenShards = new Map<number, string>();
  for (const { name, file } of files) {
    checkCompatible(first.file, file, first.name, name, false);
    const c = file.shard?.count ?? 1,
      i = file.shard?.index ?? 1;
    if (c !== count)
      throw new ConfigError(`${name} is shard ${i}/${c} but ${first.name} belongs to a run of ${count} shards`);
    const prev = seenShards.get(i);
    if (prev !== undefined) throw new ConfigError(`${name} and ${prev} are both shard ${i}/${count}`);
    seenShards.set(i, name);
  }
  const byKey = new Map<string, { e: ScoreEntry; from: string }>();
  for (const { name, file } of files) {
    for (const e of file.modules) {
      const k = moduleKey(e);
      const prev = byKey.get(k);
      if (prev && JSON.stringify(prev.e) !== JSON.stringify(e))
        throw new ConfigError(`module ${k} has different scores in ${prev.from} and ${name}`);
      byKey.set(k, { e, from: name });
    }
  }
  const modules = [...byKey.values()].map((v) => v.e).sort(compareModules);
  const all = files.every((f) => f.file.complete) && seenShards.size === count;
  const cost = files.reduce(
    (a, f) => ({
      layer_forwards: a.layer_forwards + f.file.cost.layer_forwards,
      naive_layer_forwards: a.naive_layer_forwards + (f.file.cost.naive_layer_forwards ?? 0),
      seconds: a.seconds + f.file.cost.seconds,
    }),
    { layer_forwards: 0, naive_layer_forwards: 0, seconds: 0 },
  );
  const expected = all ? modules.length : files.reduce((a, f) => a + f.file.expected_modules, 0);
  return { ...first.file, shard: null, modules, cost, expected_modules: expected, complete: all };
}

/** Refuses scores made on another model or geometry. */
export function checkScoresMatchModel(file: ScoresFile, model: ClipModel, fileName: string, modelName: string): void {
  const g = modelGeometry(model);
  if (JSON.stringify(g) !== JSON.stringify(file.model.geometry)) {
    const show = (x: TowerGeometry) => `heads ${JSON.stringify(x.heads)}, ffn ${JSON.stringify(x.ffn)}`;
    throw new ConfigError(
      `${fileName} was scored on a model of another geometry (${file.model.path}: vision ${show(file.model.geometry.vision)}; ` +
        `text ${show(file.model.geometry.text)}) than ${modelName} (vision ${show(g.vision)}; text ${show(g.text)}); ` +
        `score this model first`,
    );
  }
  const fp = modelFingerprint(model);
  if (fp !== file.model.fingerprint) {
    throw new ConfigError(
      `${fileName} was scored on other weights (${file.model.path}, fingerprint ${file.model.fingerprint}) than ${modelName} ` +
        `(fingerprint ${fp}); score this model first`,
    );
  }
}
