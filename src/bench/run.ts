// `npm run bench`: our figures next to PyTorch's (Debian python3-torch, same geometry, batch and threads), as ratios.
// Usage: npm run bench -- [--geometry vit-b-32] [--batch 32] [--threads 2] [--iters 2] [--only infer,eval,score,train]
// Default: all four sections (train: one distillation step, src/train/bench-train.ts vs bench/torch_train_bench.py).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { loadNativeKernels } from '../engine/native.ts';
import { resolveThreads, stderrLogger, type Runtime } from '../engine/runtime.ts';
import { initClipModel, type GeometryName } from '../model/init.ts';
import { benchInfer } from './infer.ts';
import { benchEval } from './eval.ts';
import { benchScore } from './score.ts';
import { benchTrain } from './train.ts';

const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

function torchInfer(geometry: string, batch: number, threads: number, iters: number): { images_per_s: number; texts_per_s: number; torch: string } | null {
  const r = spawnSync('/usr/bin/python3', [join(here, 'torch_bench.py'), '--geometry', geometry, '--batch', String(batch), '--threads', String(threads), '--iters', String(iters)], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`PyTorch reference failed (is python3-torch installed?):\n${r.stderr}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const row = (name: string, ours: number, theirs: number | undefined, unit: string): string =>
  `${name.padEnd(28)} ours ${ours.toFixed(2).padStart(8)} ${unit}   pytorch ${theirs === undefined ? '     n/a' : theirs.toFixed(2).padStart(8)} ${unit}   ratio ${theirs ? (ours / theirs).toFixed(2) + '×' : 'n/a'}`;

async function main(): Promise<void> {
  const geometry = arg('geometry', 'vit-b-32') as GeometryName;
  const batch = Number(arg('batch', '32'));
  const threads = resolveThreads(Number(arg('threads', '2')));
  const iters = Number(arg('iters', '2'));
  const only = new Set(arg('only', 'infer,eval,score,train').split(','));
  const kernels = loadNativeKernels();
  kernels.setThreads(threads);
  const rt: Runtime = { kernels, threads, seed: 0, log: stderrLogger };
  const results: Record<string, unknown> = { geometry, batch, threads };

  if (only.has('infer')) {
    process.stderr.write(`bench infer: ${geometry}, batch ${batch}, ${threads} threads …\n`);
    const model = initClipModel(geometry, 0);
    const ours = benchInfer(rt, model, batch, iters);
    const torch = torchInfer(geometry, batch, threads, iters);
    console.log(row('images/s (fp32)', ours.images_per_s, torch?.images_per_s, 'img/s'));
    console.log(row('texts/s (fp32, 77 tokens)', ours.texts_per_s, torch?.texts_per_s, 'txt/s'));
    results.infer = { ours, pytorch: torch };
  }
  if (only.has('eval')) {
    process.stderr.write(`bench eval: ${geometry}, ${4 * batch} PNG images …\n`);
    const r = await benchEval(rt, initClipModel(geometry, 0), 4 * batch, batch);
    console.log(`eval images/s (decode+preprocess+forward) ${r.eval_images_per_s.toFixed(2)}   raw forward ${r.forward_images_per_s.toFixed(2)}   eval/forward ${r.ratio.toFixed(2)}`);
    results.eval = r;
  }
  if (only.has('score')) {
    process.stderr.write(`bench score: MoPE fast vs naive path, ${geometry} …\n`);
    const r = benchScore(rt, initClipModel(geometry, 0), { n: 8 });
    console.log(`MoPE scoring (${r.modules} vision heads, ${r.n} pairs): fast ${r.fast_s.toFixed(1)} s, naive ${r.naive_s.toFixed(1)} s, speed-up ${r.speedup_wall.toFixed(2)}× wall, ${(r.naive_layer_forwards / r.layer_forwards).toFixed(2)}× layer-forwards (full vision run ${r.full_run_forward_ratio.toFixed(2)}×), max |Δmope| ${r.max_abs_mope_diff}`);
    results.score = r;
  }
  if (only.has('train')) {
    process.stderr.write(`bench train: distillation step, half-width vit-b-32 student vs full teacher, batch ${batch}, ${threads} threads …\n`);
    const ours = benchTrain(rt, { batch, iters });
    const r = spawnSync('/usr/bin/python3', [join(here, 'torch_train_bench.py'), '--batch', String(batch), '--threads', String(threads), '--iters', String(iters)], { encoding: 'utf8' });
    const torch = r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()!) as { pairs_per_s: number } : null;
    if (!torch) process.stderr.write(`PyTorch train reference failed:\n${r.stderr}\n`);
    console.log(row('distill step pairs/s (fp32)', ours.pairs_per_s, torch?.pairs_per_s, 'pair/s'));
    results.train = { ours, pytorch: torch };
  }
  console.log(JSON.stringify(results));
}

await main();
