// Golden test of the MoPE definition: our fast scorer (masking) against tools/mope_reference.py (PyTorch float64,
// modules removed by weight deletion) on test/golden/mope: every head, FFN group and layer of both towers.
// Dims: N 12 calibration pairs, image 16, text/vision C 32 × L 3 × NH 4, F 56 in groups of 24 (last 8), E 16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { referenceKernels } from '../src/engine/reference.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { scoreMope, type Calibration } from '../src/prune/mope.ts';
import { enumerateModules, moduleKey, type ModuleRef } from '../src/prune/modules.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), 'golden', 'mope');

interface Expected {
  torch_version: string;
  task: 'retrieval';
  n: number;
  ffn_group_size: number;
  checkpoint: string;
  pixels: string;
  captions: string;
  base: { z: number; loss: number };
  modules: Array<ModuleRef & { mope: number; loss_increase: number; z: number; loss: number }>;
}

const expected = JSON.parse(readFileSync(join(ROOT, 'expected.json'), 'utf8')) as Expected;
const model = loadCheckpoint(join(ROOT, expected.checkpoint));
const pixels = readSafetensors(join(ROOT, expected.pixels)).tensors.get('pixel_values')!.data;
const captions = (JSON.parse(readFileSync(join(ROOT, expected.captions), 'utf8')) as { captions: number[][] }).captions;
const cal: Calibration = { task: 'retrieval', retrieval: { pixels, n: expected.n, captions } };

const runtimes: Array<[string, () => Runtime]> = [
  ['native', () => ({ kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger })],
  ['reference', () => ({ kernels: referenceKernels, threads: 1, seed: 0, log: silentLogger })],
];

test('golden inputs are what the reference used', () => {
  assert.equal(captions.length, expected.n);
  assert.equal(pixels.length, expected.n * 3 * model.config.vision.imageSize ** 2);
  const mods = enumerateModules(model, {
    towers: ['vision', 'text'],
    kinds: ['head', 'ffn', 'layer'],
    ffnGroupSize: expected.ffn_group_size,
  });
  assert.deepEqual(
    mods.map(moduleKey).sort(),
    expected.modules.map(moduleKey).sort(),
    'same module set as the reference',
  );
  assert.ok(
    expected.modules.filter((m) => m.mope !== 0).length >= expected.modules.length / 2,
    'most modules change Z',
  );
});

for (const [name, mk] of runtimes) {
  for (const variants of [1, 3]) {
    test(`scoreMope fast path (${name} kernels, ${variants} stacked variants) = weight-deletion reference (torch ${expected.torch_version})`, () => {
      const mods = enumerateModules(model, {
        towers: ['vision', 'text'],
        kinds: ['head', 'ffn', 'layer'],
        ffnGroupSize: expected.ffn_group_size,
      });
      // batch 5: text chunks of different lengths are padded (EOS + attention mask); the reference runs unpadded.
      const r = scoreMope(mk(), model, cal, mods, { ffnGroupSize: expected.ffn_group_size, batch: 5, variants });
      assert.equal(r.base.z, expected.base.z, 'base Z');
      assert.ok(
        Math.abs(r.base.loss - expected.base.loss) <= 1e-5,
        `base loss ${r.base.loss} vs ${expected.base.loss}`,
      );
      const ours = new Map(r.modules.map((m) => [moduleKey(m), m]));
      let worst = 0;
      for (const e of expected.modules) {
        const k = moduleKey(e);
        const m = ours.get(k);
        assert.ok(m, `module ${k} not scored`);
        assert.equal(m.mope, e.mope, `${k}: MoPE ${m.mope} vs reference ${e.mope}`);
        const d = Math.abs(m.loss_increase - e.loss_increase);
        worst = Math.max(worst, d);
        assert.ok(
          d <= 1e-5,
          `${k}: loss_increase ${m.loss_increase} vs reference ${e.loss_increase} (|Δ| ${d.toExponential(2)})`,
        );
      }
      assert.equal(r.modules.length, expected.modules.length);
      assert.ok(worst <= 1e-5);
    });
  }
}
