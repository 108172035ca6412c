// Spearman rank correlation of two score lists over the same modules: how alike two calibration subsets rank the
// modules (1 = the same order), and the split-half agreement of a calibration set. Ties get their average rank.
// Dims: n modules.
import { ShapeError } from '../errors.ts';
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel } from '../model/types.ts';
import { splitCalibration } from './calibration.ts';
import { scoreMope, type Calibration, type ModuleScore, type ScoreOptions } from './mope.ts';
import type { ModuleRef } from './modules.ts';
import type { ScoresFile } from './scores-file.ts';

/** Average ranks (1-based) of v; equal values share the mean of their positions. */
export function ranks(v: readonly number[]): number[] {
  const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!);
  const r = new Array<number>(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
    for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Pearson correlation of the ranks (NaN when either list is constant). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new ShapeError(`spearman: ${a.length} vs ${b.length} values`);
  const ra = ranks(a),
    rb = ranks(b),
    n = a.length;
  const ma = ra.reduce((s, x) => s + x, 0) / n,
    mb = rb.reduce((s, x) => s + x, 0) / n;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = ra[i]! - ma,
      db = rb[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return sab / Math.sqrt(saa * sbb);
}

const key = (m: ModuleRef) => `${m.tower}/${m.kind}/${m.layer}/${m.index ?? ''}`;

/**
 * Spearman correlation of the MoPE scores of two files over their common modules, per module kind and over all.
 * Modules are ranked by MoPE, ties broken by loss increase (as the plan ranks them).
 */
export function scoreAgreement(a: ScoresFile, b: ScoresFile): Record<string, number> {
  const mb = new Map(b.modules.map((m) => [key(m), m]));
  const byKind = new Map<string, [number[], number[]]>();
  for (const m of a.modules) {
    const o = mb.get(key(m));
    if (!o || m.mope === null || o.mope === null) continue;
    const v = (x: typeof m) => x.mope! + 1e-6 * (x.loss_increase ?? 0);
    for (const k of [m.kind, 'all']) {
      if (!byKind.has(k)) byKind.set(k, [[], []]);
      byKind.get(k)![0].push(v(m));
      byKind.get(k)![1].push(v(o));
    }
  }
  return Object.fromEntries([...byKind].map(([k, [x, y]]) => [k, spearman(x, y)]));
}

/** Smallest half (items per task part) for which the split-half agreement is computed. */
export const MIN_SPLIT_HALF = 16;

/** Whether both halves of the calibration set hold at least MIN_SPLIT_HALF items of each part. */
export function canSplit(cal: Calibration): boolean {
  return [cal.retrieval?.n, cal.zeroshot?.n].every((n) => n === undefined || Math.floor(n / 2) >= MIN_SPLIT_HALF);
}

/**
 * Split-half agreement: the modules scored by MoPE on each of two disjoint halves of the calibration set
 * (splitCalibration), then the Spearman correlation of the two rankings per module kind and over all. Costs about one
 * more full scoring pass. Near 1: the calibration set is large enough for a stable ranking.
 */
export function splitHalfAgreement(
  rt: Runtime,
  model: ClipModel,
  cal: Calibration,
  modules: ModuleRef[],
  opts: ScoreOptions,
): Record<string, number> {
  const [a, b] = splitCalibration(cal);
  const plain = { ffnGroupSize: opts.ffnGroupSize, batch: opts.batch, variants: opts.variants };
  const sa = scoreMope(rt, model, a, modules, plain).modules,
    sb = scoreMope(rt, model, b, modules, plain).modules;
  const v = (m: ModuleScore) => m.mope + 1e-6 * m.loss_increase;
  const out: Record<string, [number[], number[]]> = {};
  sa.forEach((m, i) => {
    for (const k of [`${m.tower}/${m.kind}`, 'all']) {
      (out[k] ??= [[], []])[0].push(v(m));
      out[k][1].push(v(sb[i]!));
    }
  });
  return Object.fromEntries(Object.entries(out).map(([k, [x, y]]) => [k, spearman(x, y)]));
}
