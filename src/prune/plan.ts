// Prune plan from scores: which heads, FFN neurons (whole groups) and layers of each tower to keep.
// Dims: L layers, NH_l heads, F_l neurons and G_l = ⌈F_l / N⌉ FFN groups of layer l (N = ffn_group_size).
// Ranking: higher = more important; MoPE then loss_increase (mope metric), magnitude, or random value;
// remaining ties by lower layer, then lower index.
import { ConfigError } from '../errors.ts';
import type { ClipModel } from '../model/types.ts';
import { keepAll, range, type TowerKeep } from './masks.ts';
import { ffnGroupCount, ffnGroupRange, moduleKey, towerConfig, type ModuleKind, type TowerName } from './modules.ts';
import type { ScoreEntry, ScoresFile } from './scores-file.ts';

export type Scope = 'per-layer' | 'global';

export interface PlanOptions {
  towers: TowerName[];
  /** Fraction of heads kept, in (0, 1]. */
  keepHeads?: number;
  /** Fraction of FFN groups kept, in (0, 1]. */
  keepFfn?: number;
  /** Number of layers kept (the best N, in their original order). */
  keepLayers?: number;
  scope: Scope;
  /** Heads kept in every layer at least (≥ 1). */
  minHeads: number;
}

export type PrunePlan = Partial<Record<TowerName, TowerKeep>>;

export function parseScope(s: string): Scope {
  if (s === 'per-layer' || s === 'global') return s;
  throw new ConfigError(`--scope expects per-layer or global, found "${s}"`);
}

/** Importance key of an entry under the file's metric (compared lexicographically, larger = keep). */
function importance(e: ScoreEntry, metric: ScoresFile['metric']): [number, number] {
  if (metric === 'mope') return [e.mope ?? -Infinity, e.loss_increase ?? -Infinity];
  if (metric === 'magnitude') return [e.magnitude ?? -Infinity, 0];
  if (metric === 'taylor') return [e.taylor ?? -Infinity, 0];
  return [e.random ?? -Infinity, 0];
}

/** Sorts entries most important first. */
export function rankEntries(entries: ScoreEntry[], metric: ScoresFile['metric']): ScoreEntry[] {
  return [...entries].sort((a, b) => {
    const ka = importance(a, metric),
      kb = importance(b, metric);
    return kb[0] - ka[0] || kb[1] - ka[1] || a.layer - b.layer || a.index - b.index;
  });
}

function checkFraction(v: number | undefined, flag: string): void {
  if (v !== undefined && !(Number.isFinite(v) && v > 0 && v <= 1))
    throw new ConfigError(`${flag} expects a number in (0, 1], found ${v}`);
}

/** The scored entries of one kind in one tower, checked to cover every module of that kind. */
function entriesOf(
  scores: ScoresFile,
  model: ClipModel,
  tower: TowerName,
  kind: ModuleKind,
  flag: string,
): Map<string, ScoreEntry> {
  const cfg = towerConfig(model, tower);
  const got = new Map<string, ScoreEntry>();
  for (const e of scores.modules) if (e.tower === tower && e.kind === kind) got.set(moduleKey(e), e);
  const missing: string[] = [];
  for (let l = 0; l < cfg.heads.length; l++) {
    const n = kind === 'head' ? cfg.heads[l] : kind === 'ffn' ? ffnGroupCount(cfg.ffn[l], scores.ffn_group_size) : 1;
    for (let i = 0; i < n; i++) {
      const k = moduleKey({ tower, kind, layer: l, index: i });
      if (!got.has(k)) missing.push(k);
    }
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `${flag} needs ${kind} scores for every ${kind} of the ${tower} tower, but the scores file lacks ${missing.length} ` +
        `(first: ${missing[0]}); score them with --tower ${tower} --granularity ${kind === 'head' ? 'heads' : kind === 'layer' ? 'layers' : 'ffn'}` +
        ` (and merge every shard)`,
    );
  }
  return got;
}

/**
 * Picks kept units (heads, or FFN groups) per layer. per-layer: round(f·n_l) in each layer; global: the best
 * round(f·Σn_l) across layers. Every layer keeps at least min(minPerLayer, n_l), best first.
 */
function pickUnits(
  counts: number[],
  entries: Map<string, ScoreEntry>,
  tower: TowerName,
  kind: ModuleKind,
  frac: number,
  scope: Scope,
  minPerLayer: number,
  metric: ScoresFile['metric'],
): number[][] {
  const L = counts.length;
  const layerRank = counts.map((n, l) =>
    rankEntries(
      range(n).map((i) => entries.get(moduleKey({ tower, kind, layer: l, index: i }))!),
      metric,
    ),
  );
  const kept: number[][] = counts.map(() => []);
  if (scope === 'per-layer') {
    for (let l = 0; l < L; l++) {
      const n = Math.min(counts[l], Math.max(minPerLayer, Math.round(frac * counts[l])));
      kept[l] = layerRank[l].slice(0, n).map((e) => e.index);
    }
  } else {
    const total = Math.round(frac * counts.reduce((a, b) => a + b, 0));
    const rest: ScoreEntry[] = [];
    let used = 0;
    for (let l = 0; l < L; l++) {
      const n = Math.min(counts[l], minPerLayer);
      kept[l] = layerRank[l].slice(0, n).map((e) => e.index);
      used += n;
      rest.push(...layerRank[l].slice(n));
    }
    for (const e of rankEntries(rest, metric).slice(0, Math.max(0, total - used))) kept[e.layer].push(e.index);
  }
  return kept.map((k) => k.sort((a, b) => a - b));
}

/** Builds the plan for the requested towers; towers not requested are kept whole (absent from the plan). */
export function makePlan(model: ClipModel, scores: ScoresFile, opts: PlanOptions): PrunePlan {
  checkFraction(opts.keepHeads, '--keep-heads');
  checkFraction(opts.keepFfn, '--keep-ffn');
  if (!Number.isInteger(opts.minHeads) || opts.minHeads < 1) {
    throw new ConfigError(
      `--min-heads expects an integer ≥ 1 (a layer cannot keep zero heads; drop the whole layer with --keep-layers), found ${opts.minHeads}`,
    );
  }
  if (opts.keepHeads === undefined && opts.keepFfn === undefined && opts.keepLayers === undefined) {
    throw new ConfigError('prune needs at least one of --keep-heads, --keep-ffn, --keep-layers');
  }
  const plan: PrunePlan = {};
  for (const tower of opts.towers) {
    const cfg = towerConfig(model, tower);
    const L = cfg.heads.length;
    const keep = keepAll(cfg);
    if (opts.keepHeads !== undefined && opts.keepHeads < 1) {
      const entries = entriesOf(scores, model, tower, 'head', '--keep-heads');
      keep.heads = pickUnits(
        cfg.heads,
        entries,
        tower,
        'head',
        opts.keepHeads,
        opts.scope,
        opts.minHeads,
        scores.metric,
      );
    }
    if (opts.keepFfn !== undefined && opts.keepFfn < 1) {
      const entries = entriesOf(scores, model, tower, 'ffn', '--keep-ffn');
      const N = scores.ffn_group_size;
      const groups = cfg.ffn.map((f) => ffnGroupCount(f, N));
      const keptGroups = pickUnits(groups, entries, tower, 'ffn', opts.keepFfn, opts.scope, 1, scores.metric);
      keep.ffn = keptGroups.map((gs, l) =>
        gs.flatMap((g) => {
          const [a, b] = ffnGroupRange(cfg.ffn[l], N, g);
          return range(b - a).map((i) => a + i);
        }),
      );
    }
    if (opts.keepLayers !== undefined) {
      if (!Number.isInteger(opts.keepLayers) || opts.keepLayers < 1 || opts.keepLayers > L) {
        throw new ConfigError(
          `--keep-layers expects an integer in [1, ${L}] (the ${tower} tower has ${L} layers), found ${opts.keepLayers}`,
        );
      }
      if (opts.keepLayers < L) {
        const entries = entriesOf(scores, model, tower, 'layer', '--keep-layers');
        keep.layers = rankEntries([...entries.values()], scores.metric)
          .slice(0, opts.keepLayers)
          .map((e) => e.layer)
          .sort((a, b) => a - b);
      }
    }
    plan[tower] = keep;
  }
  return plan;
}

/** Per-layer summary of what a tower plan keeps, for the prune report. */
export function describeKeep(model: ClipModel, tower: TowerName, keep: TowerKeep) {
  const cfg = towerConfig(model, tower);
  return {
    layers_before: cfg.heads.length,
    layers_kept: keep.layers.map((l) => ({ layer: l, original_layer: cfg.layerMap[l] })),
    heads: keep.layers.map((l) => ({
      layer: l,
      before: cfg.heads[l],
      after: keep.heads[l].length,
      kept: keep.heads[l],
    })),
    ffn: keep.layers.map((l) => ({ layer: l, before: cfg.ffn[l], after: keep.ffn[l].length })),
  };
}
