// MoPE scoring benchmark: fast path (cached layer inputs, other tower once) vs naive path (whole model per
// module) on the same modules, wall-clock and layer-forwards, plus the layer-forward ratio for a full run.
// Dims: N calibration pairs, vision/text towers of the given model; modules = heads of a few layers by default.
// Usage (standalone): node --import tsx bench/score.ts [--geometry vit-b-32] [--n 8] [--threads 2]
import type { Runtime } from '../engine/runtime.ts';
import type { ClipModel } from '../model/types.ts';
import { scoreMope, type Calibration } from '../prune/mope.ts';
import { enumerateModules, type ModuleRef } from '../prune/modules.ts';

export interface ScoreBench {
  n: number;
  modules: number;
  fast_s: number;
  naive_s: number;
  speedup_wall: number;
  layer_forwards: number;
  naive_layer_forwards: number;
  /** naive / fast layer-forwards for scoring every vision head, FFN group (64) and layer. */
  full_run_forward_ratio: number;
  max_abs_mope_diff: number;
}

function syntheticCalibration(model: ClipModel, n: number): Calibration {
  const v = model.config.vision,
    per = v.channels * v.imageSize * v.imageSize;
  let s = 12345;
  const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const pixels = Float32Array.from({ length: n * per }, () => rnd() * 2 - 1);
  const t = model.config.text;
  const captions = Array.from({ length: n }, () => [
    t.bosTokenId,
    ...Array.from({ length: 10 + Math.floor(rnd() * 10) }, () => Math.floor(rnd() * 40000)),
    t.eosTokenId,
  ]);
  return { task: 'retrieval', retrieval: { pixels, n, captions } };
}

/** Layer-forwards of the fast path for a module set, from its accounting rule (no compute). */
function fastForwards(model: ClipModel, mods: ModuleRef[]): number {
  const L = model.config.vision.heads.length,
    Lt = model.config.text.heads.length;
  const maxLayer = Math.max(...mods.map((m) => m.layer));
  return L + Lt + maxLayer + mods.reduce((a, m) => a + (L - m.layer) - (m.kind === 'layer' ? 1 : 0), 0);
}

export function benchScore(rt: Runtime, model: ClipModel, opts: { n?: number; layers?: number[] } = {}): ScoreBench {
  const n = opts.n ?? 8;
  const L = model.config.vision.heads.length;
  const layers = opts.layers ?? [0, Math.floor(L / 2), L - 1];
  const cal = syntheticCalibration(model, n);
  const mods = enumerateModules(model, { towers: ['vision'], kinds: ['head'], ffnGroupSize: 64 }).filter((m) =>
    layers.includes(m.layer),
  );
  let t = Date.now();
  const fast = scoreMope(rt, model, cal, mods, { ffnGroupSize: 64, batch: n });
  const fastS = (Date.now() - t) / 1000;
  t = Date.now();
  const naive = scoreMope(rt, model, cal, mods, { ffnGroupSize: 64, batch: n, naive: true });
  const naiveS = (Date.now() - t) / 1000;
  let diff = 0;
  fast.modules.forEach((m, i) => {
    diff = Math.max(
      diff,
      Math.abs(m.mope - naive.modules[i].mope),
      Math.abs(m.loss_increase - naive.modules[i].loss_increase),
    );
  });
  const all = enumerateModules(model, { towers: ['vision'], kinds: ['head', 'ffn', 'layer'], ffnGroupSize: 64 });
  const naiveAll = (all.length + 1) * (L + model.config.text.heads.length);
  return {
    n,
    modules: mods.length,
    fast_s: fastS,
    naive_s: naiveS,
    speedup_wall: naiveS / fastS,
    layer_forwards: fast.cost.layer_forwards,
    naive_layer_forwards: naive.cost.layer_forwards,
    full_run_forward_ratio: naiveAll / fastForwards(model, all),
    max_abs_mope_diff: diff,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { loadNativeKernels } = await import('../engine/native.ts');
  const { initClipModel } = await import('../model/init.ts');
  const { resolveThreads, stderrLogger } = await import('../engine/runtime.ts');
  const arg = (k: string, d: string) => {
    const i = process.argv.indexOf(`--${k}`);
    return i >= 0 ? process.argv[i + 1]! : d;
  };
  const kernels = loadNativeKernels();
  const threads = resolveThreads(Number(arg('threads', '2')));
  kernels.setThreads(threads);
  const model = initClipModel(arg('geometry', 'vit-b-32') as 'vit-b-32', 0);
  console.log(
    JSON.stringify(benchScore({ kernels, threads, seed: 0, log: stderrLogger }, model, { n: Number(arg('n', '8')) })),
  );
}
