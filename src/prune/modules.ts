// Prunable modules of a CLIP model: attention heads (per layer, head index), FFN neuron groups (per layer,
// neurons [g·N, (g+1)·N) of F_l, the last group may be smaller) and whole layers, in either tower.
// Dims: L layers, NH_l heads of layer l, F_l FFN width of layer l, N = FFN group size.
import { ConfigError } from '../errors.ts';
import type { ClipModel, TowerConfig } from '../model/types.ts';

export type TowerName = 'text' | 'vision';
export type ModuleKind = 'head' | 'ffn' | 'layer';

/** One prunable module. layer is the index in the current model (0..L−1), index the head / group number. */
export interface ModuleRef {
  tower: TowerName;
  kind: ModuleKind;
  layer: number;
  index: number;
}

export interface EnumerateOptions {
  towers: TowerName[];
  kinds: ModuleKind[];
  /** N: neurons per FFN group (needed when kinds includes 'ffn'). */
  ffnGroupSize: number;
}

export function towerConfig(model: ClipModel, tower: TowerName): TowerConfig {
  return tower === 'text' ? model.config.text : model.config.vision;
}

/** Number of FFN groups of a layer with F neurons. */
export function ffnGroupCount(F: number, groupSize: number): number {
  return Math.ceil(F / groupSize);
}

/** Neurons [start, end) of FFN group g in a layer with F neurons. */
export function ffnGroupRange(F: number, groupSize: number, g: number): [number, number] {
  const start = g * groupSize;
  if (!Number.isInteger(g) || g < 0 || start >= F) {
    throw new ConfigError(`FFN group ${g} does not exist in a layer of ${F} neurons with groups of ${groupSize}`);
  }
  return [start, Math.min(F, start + groupSize)];
}

/** Stable string key of a module: "vision/head/3/7". */
export function moduleKey(m: ModuleRef): string {
  return `${m.tower}/${m.kind}/${m.layer}/${m.index}`;
}

const KIND_ORDER: Record<ModuleKind, number> = { head: 0, ffn: 1, layer: 2 };
const TOWER_ORDER: Record<TowerName, number> = { vision: 0, text: 1 };

/** Canonical order: tower (vision, text), then layer, then kind (head, ffn, layer), then index. */
export function compareModules(a: ModuleRef, b: ModuleRef): number {
  return (
    TOWER_ORDER[a.tower] - TOWER_ORDER[b.tower] ||
    a.layer - b.layer ||
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    a.index - b.index
  );
}

/**
 * Every module of the requested towers and kinds, in canonical order (grouped by layer, which is what the
 * fast scorer wants: all modules of layer l share the cached stream entering layer l).
 */
export function enumerateModules(model: ClipModel, opts: EnumerateOptions): ModuleRef[] {
  if (opts.kinds.includes('ffn') && (!Number.isInteger(opts.ffnGroupSize) || opts.ffnGroupSize < 1)) {
    throw new ConfigError(`--ffn-group-size expects a positive integer, found ${opts.ffnGroupSize}`);
  }
  const out: ModuleRef[] = [];
  const towers = [...new Set(opts.towers)].sort((a, b) => TOWER_ORDER[a] - TOWER_ORDER[b]);
  for (const tower of towers) {
    const cfg = towerConfig(model, tower);
    for (let l = 0; l < cfg.heads.length; l++) {
      if (opts.kinds.includes('head'))
        for (let h = 0; h < cfg.heads[l]; h++) out.push({ tower, kind: 'head', layer: l, index: h });
      if (opts.kinds.includes('ffn')) {
        const G = ffnGroupCount(cfg.ffn[l], opts.ffnGroupSize);
        for (let g = 0; g < G; g++) out.push({ tower, kind: 'ffn', layer: l, index: g });
      }
      if (opts.kinds.includes('layer')) out.push({ tower, kind: 'layer', layer: l, index: 0 });
    }
  }
  return out;
}

/** "heads,ffn,layers" → kinds. Accepts singular and plural spellings. */
export function parseGranularity(s: string): ModuleKind[] {
  const kinds: ModuleKind[] = [];
  for (const raw of s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const k = ({ head: 'head', heads: 'head', ffn: 'ffn', ffns: 'ffn', layer: 'layer', layers: 'layer' } as const)[
      raw as 'head'
    ];
    if (k === undefined)
      throw new ConfigError(`--granularity expects a comma list of heads, ffn, layers; found "${raw}"`);
    if (!kinds.includes(k)) kinds.push(k);
  }
  if (kinds.length === 0) throw new ConfigError('--granularity expects at least one of heads, ffn, layers');
  return kinds.sort((a, b) => KIND_ORDER[a] - KIND_ORDER[b]);
}

/** "vision" | "text" | "both" → towers. */
export function parseTowers(s: string, flag = '--tower'): TowerName[] {
  if (s === 'vision' || s === 'text') return [s];
  if (s === 'both') return ['vision', 'text'];
  throw new ConfigError(`${flag} expects vision, text or both; found "${s}"`);
}

/** "I/N" with 1 ≤ I ≤ N → {index: I, count: N}. */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const i = m ? Number(m[1]) : NaN,
    n = m ? Number(m[2]) : NaN;
  if (!m || n < 1 || i < 1 || i > n) {
    throw new ConfigError(`--shard expects I/N with 1 ≤ I ≤ N (for example 2/8), found "${s}"`);
  }
  return { index: i, count: n };
}

/** The deterministic subset of modules of shard I/N: every N-th module of the canonical order, from I−1. */
export function shardModules<T>(modules: T[], shard: { index: number; count: number } | null): T[] {
  if (shard === null) return modules;
  return modules.filter((_, i) => i % shard.count === shard.index - 1);
}
