// Golden tests of the CLIP forward against tools/torch_clip.py (independent PyTorch, float64 and float32) on the
// tiny checkpoints in test/golden/model/{A,B}. Dims: Nt texts × T tokens, Ni images, C width, E projection dim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { referenceKernels } from '../src/engine/reference.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { readGolden, type Golden } from './helpers/golden.ts';
import type { TowerMasks } from '../src/model/types.ts';
import { textForward, visionForward, textLastHidden, visionTokens } from '../src/model/forward.ts';
import { encodeTexts, encodeImages, clipLogits } from '../src/model/encode.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), 'golden', 'model');

function get(g: Golden, name: string): Float64Array {
  const v = g.f.get(name);
  assert.ok(v, `golden tensor ${name} missing; rerun tools/make_golden.py`);
  return v;
}

/** max |a−b| / (1 + |b|): absolute near zero, relative for large values. */
function check(a: Float32Array, b: Float64Array, tol: number, what: string): number {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs golden ${b.length}`);
  let worst = 0,
    at = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  assert.ok(
    worst <= tol,
    `${what}: max error ${worst.toExponential(2)} at ${at} (ours ${a[at]}, golden ${b[at]}) > ${tol}`,
  );
  return worst;
}

function masksFor(g: Golden, tower: 'text' | 'vision', L: number): TowerMasks {
  const f32 = (n: string) => Float32Array.from(get(g, n));
  return {
    heads: Array.from({ length: L }, (_, l) => f32(`mask.${tower}.heads.${l}`)),
    ffn: Array.from({ length: L }, (_, l) => f32(`mask.${tower}.ffn.${l}`)),
    layers: f32(`mask.${tower}.layers`),
  };
}

const kernelSets: [string, () => Runtime][] = [
  ['native', () => ({ kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger })],
  ['reference', () => ({ kernels: referenceKernels, threads: 1, seed: 0, log: silentLogger })],
];

const TOL = Number(process.env.GOLDEN_TOL ?? 1e-4);

for (const name of ['A', 'B']) {
  for (const [kname, mk] of kernelSets) {
    test(`golden ${name} (${kname} kernels): embeds, logits, hidden states, masked variant`, () => {
      const rt = mk();
      const dir = join(ROOT, name);
      const model = loadCheckpoint(dir);
      const g = readGolden(join(dir, 'golden.safetensors'));
      const ids = g.i.get('input_ids')!,
        am = g.i.get('attention_mask')!;
      const [Nt, T] = g.shape.get('input_ids')!;
      const px = Float32Array.from(get(g, 'pixel_values'));
      const Ni = g.shape.get('pixel_values')![0];
      const E = model.config.projectionDim;
      const Lt = model.config.text.heads.length,
        Lv = model.config.vision.heads.length;
      const mask = Float32Array.from(am);

      const t = textForward(rt, model, ids, Nt, T, { attentionMask: mask, returnHidden: true });
      const v = visionForward(rt, model, px, Ni, { returnHidden: true });
      assert.equal(t.hidden!.length, Lt + 1);
      assert.equal(v.hidden!.length, Lv + 1);
      assert.equal(v.hidden![0].length, Ni * visionTokens(model) * model.config.vision.hidden);
      const logits = clipLogits(rt, t.embeds, Nt, v.embeds, Ni, E, model.weights.logitScale[0]);
      const tm = textForward(rt, model, ids, Nt, T, {
        attentionMask: mask,
        masks: masksFor(g, 'text', Lt),
        returnHidden: true,
      });
      const vm = visionForward(rt, model, px, Ni, { masks: masksFor(g, 'vision', Lv), returnHidden: true });

      for (const p of ['f64', 'f32']) {
        check(t.embeds, get(g, `${p}.text_embeds`), TOL, `${p} text_embeds`);
        check(v.embeds, get(g, `${p}.image_embeds`), TOL, `${p} image_embeds`);
        check(logits, get(g, `${p}.logits_per_text`), TOL, `${p} logits_per_text`);
        check(t.hidden![0], get(g, `${p}.text_hidden0`), TOL, `${p} text hidden[0]`);
        check(t.hidden![Lt], get(g, `${p}.text_hidden_last`), TOL, `${p} text hidden[L]`);
        check(
          textLastHidden(rt, model, t.hidden![Lt], Nt, T),
          get(g, `${p}.text_last_hidden_state`),
          TOL,
          `${p} text last_hidden_state`,
        );
        check(v.hidden![0], get(g, `${p}.vision_hidden0`), TOL, `${p} vision hidden[0]`);
        check(v.hidden![Lv], get(g, `${p}.vision_hidden_last`), TOL, `${p} vision hidden[L]`);
        check(tm.embeds, get(g, `${p}.masked.text_embeds`), TOL, `${p} masked text_embeds`);
        check(vm.embeds, get(g, `${p}.masked.image_embeds`), TOL, `${p} masked image_embeds`);
        check(tm.hidden![Lt], get(g, `${p}.masked.text_hidden_last`), TOL, `${p} masked text hidden[L]`);
        check(vm.hidden![Lv], get(g, `${p}.masked.vision_hidden_last`), TOL, `${p} masked vision hidden[L]`);
      }
    });
  }

  test(`golden ${name}: encodeTexts / encodeImages reproduce the golden embeds`, () => {
    const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };
    const dir = join(ROOT, name);
    const model = loadCheckpoint(dir);
    const g = readGolden(join(dir, 'golden.safetensors'));
    const ids = g.i.get('input_ids')!,
      am = g.i.get('attention_mask')!;
    const [Nt, T] = g.shape.get('input_ids')!;
    const seqs = Array.from({ length: Nt }, (_, r) =>
      Array.from(ids.subarray(r * T, (r + 1) * T)).filter((_, t) => am[r * T + t] === 1),
    );
    check(encodeTexts(rt, model, seqs, { batch: 3 }), get(g, 'f64.text_embeds'), TOL, 'encodeTexts');
    const Ni = g.shape.get('pixel_values')![0];
    check(
      encodeImages(rt, model, Float32Array.from(get(g, 'pixel_values')), Ni, { batch: 2 }),
      get(g, 'f64.image_embeds'),
      TOL,
      'encodeImages',
    );
  });
}
