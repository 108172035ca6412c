// Test fixtures for the prune tests: a tiny random CLIP with awkward widths and a synthetic calibration set
// (random pixels, random token id lists of varied length, labels and class prompts).
// Dims: text C 32, L 3, NH 4, F 40; vision C 24, L 3, NH 3, F 36, image 12, P 4; E 8; V 100.
import type { Runtime } from '../../src/engine/runtime.ts';
import { silentLogger } from '../../src/engine/runtime.ts';
import { referenceKernels } from '../../src/engine/reference.ts';
import { configFromGeometry, initFromConfig } from '../../src/model/init.ts';
import type { ClipModel } from '../../src/model/types.ts';
import type { Calibration } from '../../src/prune/mope.ts';
import type { Task } from '../../src/prune/objective.ts';

export const rt: Runtime = { kernels: referenceKernels, threads: 1, seed: 0, log: silentLogger };
export const V = 100,
  BOS = 98,
  EOS = 99;

export function tinyModel(seed = 7): ClipModel {
  const c = configFromGeometry({
    text: { hidden: 32, layers: 3, heads: 4, ffn: 40, vocabSize: V, maxPositions: 16 },
    vision: { hidden: 24, layers: 3, heads: 3, ffn: 36, imageSize: 12, patchSize: 4, act: 'gelu' },
    projectionDim: 8,
  });
  c.text.eosTokenId = EOS;
  c.text.bosTokenId = BOS;
  return initFromConfig(c, seed, { std: 0.3, perturbNorms: true });
}

function lcg(seed: number): () => number {
  let s = (seed * 2654435761) % 2147483647 || 1;
  return () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
}

export function randomPixels(n: number, seed: number): Float32Array {
  const r = lcg(seed);
  return Float32Array.from({ length: n * 3 * 12 * 12 }, () => r() * 2 - 1);
}

export function randomIds(n: number, seed: number, maxLen = 10): number[][] {
  const r = lcg(seed);
  return Array.from({ length: n }, () => [
    BOS,
    ...Array.from({ length: 1 + Math.floor(r() * (maxLen - 2)) }, () => Math.floor(r() * 97)),
    EOS,
  ]);
}

export function calibration(task: Task, n = 10, nz = 6, K = 3): Calibration {
  const cal: Calibration = { task };
  if (task !== 'zeroshot') cal.retrieval = { pixels: randomPixels(n, 1), n, captions: randomIds(n, 2) };
  if (task !== 'retrieval') {
    cal.zeroshot = {
      pixels: randomPixels(nz, 3),
      n: nz,
      labels: Array.from({ length: nz }, (_, i) => i % K),
      prompts: Array.from({ length: K }, (_, k) => randomIds(1 + (k % 2), 10 + k, 6)),
    };
  }
  return cal;
}
