// bf16 against fp32 where it matters to users: per-tensor gradients of one distillation step (all four losses),
// embeddings of real photographs (trained demo teacher, and a ViT-B/32-geometry model), and ViT-B/32 text
// embeddings. Claims: gradient cosine ≥ 0.99 per tensor, embedding cosine ≥ 0.999 per item.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { loadKernels } from '../src/engine/native.ts';
import type { Precision } from '../src/engine/precision.ts';
import { configFromGeometry, initClipModel, initFromConfig } from '../src/model/init.ts';
import { createGrads, gradsByName } from '../src/model/grads.ts';
import { encodeImages, encodeTexts } from '../src/model/encode.ts';
import { TrainStep } from '../src/train/step.ts';
import { randomBatch } from '../src/bench/train.ts';
import { defaultPreprocessorConfig, preprocessImage } from '../src/io/preprocess.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { ClipTokenizer } from '../src/io/tokenizer.ts';
import { hasShippedTeacher, unpackShippedTeacher } from '../src/pipeline/teacher.ts';
import type { ClipModel } from '../src/model/types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PHOTOS = ['chelsea.png', 'coffee.png', 'rocket.jpg'].map((f) => join(here, 'golden', 'images', f));

const rt = (p: Precision): Runtime => ({
  kernels: loadKernels(p),
  threads: 2,
  seed: 0,
  log: silentLogger,
  precision: p,
});

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function norm(a: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

function differs(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
  return false;
}

/** Per-row cosines of two [N,E] embedding matrices. */
function rowCosines(a: Float32Array, b: Float32Array, N: number): number[] {
  const E = a.length / N;
  return Array.from({ length: N }, (_, i) => cosine(a.subarray(i * E, (i + 1) * E), b.subarray(i * E, (i + 1) * E)));
}

async function photoPixels(size: number): Promise<Float32Array> {
  const cfg = defaultPreprocessorConfig(size);
  const per = 3 * size * size,
    px = new Float32Array(PHOTOS.length * per);
  for (const [i, f] of PHOTOS.entries()) px.set(await preprocessImage(f, cfg), i * per);
  return px;
}

function assertEmbeddings(model: ClipModel, pixels: Float32Array, N: number, what: string): void {
  const e32 = encodeImages(rt('fp32'), model, pixels, N),
    e16 = encodeImages(rt('bf16'), model, pixels, N);
  assert.ok(differs(e16, e32), `${what}: the bf16 run really went through bf16 GEMMs`);
  rowCosines(e16, e32, N).forEach((c, i) => assert.ok(c >= 0.999, `${what}, item ${i}: cosine ${c}`));
}

test('one distillation step (all four losses): every student gradient tensor within cosine 0.99 of fp32', () => {
  // The student is a pruned copy of the teacher: same width, half the heads and FFN, layers 0 and 2 of 3.
  const geo = (heads: number, ffn: number, layerMap: number[]) => {
    const t = { hidden: 64, layers: layerMap.length, heads, ffn, headDim: 16, layerMap };
    return {
      text: { ...t, vocabSize: 49408, maxPositions: 16 },
      vision: { ...t, imageSize: 64, patchSize: 16 },
      projectionDim: 32,
    };
  };
  const teacher = initFromConfig(configFromGeometry(geo(4, 256, [0, 1, 2])), 1);
  const student = initFromConfig(configFromGeometry(geo(2, 128, [0, 2])), 2);
  const batch = randomBatch(3, 6, 16, 64);
  const grads = (p: Precision) => {
    const g = createGrads(student.config);
    const parts = new TrainStep(rt(p), { student, grads: g, teacher }).forwardBackward(batch);
    for (const k of ['con', 'kd', 'emb', 'hid'] as const) assert.ok(parts[k] > 0, `${p}: loss ${k} = ${parts[k]}`);
    return gradsByName(student.config, g);
  };
  const g32 = grads('fp32'),
    g16 = grads('bf16');
  let compared = 0,
    anyDiffers = false,
    worst = 1;
  for (const [name, a] of g32) {
    const b = g16.get(name)!;
    if (norm(a) === 0) {
      assert.equal(norm(b), 0, `${name}: zero in fp32 (e.g. key bias), must be zero in bf16`);
      continue;
    }
    anyDiffers ||= differs(a, b);
    if (name.endsWith('k_proj.bias')) {
      // Exactly zero in exact arithmetic (softmax ignores a shift shared by every key): only rounding noise is
      // left in either precision, so it is checked as small next to the query bias's gradient, not by direction.
      const ref = norm(g32.get(name.replace('k_proj', 'q_proj'))!);
      if (process.env.MOPE_VERBOSE) process.stderr.write(`${name}: fp32 ${norm(a)} bf16 ${norm(b)} q ${ref}\n`);
      assert.ok(norm(a) < 1e-3 * ref && norm(b) < 1e-3 * ref, `${name}: ${norm(a)}, ${norm(b)} vs q ${ref}`);
      continue;
    }
    const c = cosine(a, b);
    worst = Math.min(worst, c);
    assert.ok(c >= 0.99, `${name}: gradient cosine ${c}`);
    compared++;
  }
  assert.ok(compared > 20, `compared ${compared} tensors`);
  assert.ok(anyDiffers, 'the bf16 step really rounded');
  if (process.env.MOPE_VERBOSE) process.stderr.write(`${compared} gradient tensors, worst cosine ${worst}\n`);
});

test('bf16 image embeddings of real photographs within cosine 0.999 of fp32 (shipped demo teacher)', async (t) => {
  if (!hasShippedTeacher()) return t.skip('assets/demo-teacher is not shipped in this checkout');
  const dir = mkdtempSync(join(tmpdir(), 'bf16-teacher-'));
  try {
    unpackShippedTeacher(dir);
    const model = loadCheckpoint(dir);
    assertEmbeddings(model, await photoPixels(model.config.vision.imageSize), PHOTOS.length, 'demo teacher');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ViT-B/32 geometry: bf16 image (real photographs) and text embeddings within cosine 0.999 of fp32', async () => {
  const model = initClipModel('vit-b-32', 7);
  assertEmbeddings(model, (await photoPixels(224)).subarray(0, 2 * 3 * 224 * 224), 2, 'vit-b-32 photos');
  const tok = ClipTokenizer.fromBundledVocab({ contextLength: 77 });
  const ids = ['a photo of a cat', 'a cup of coffee on a saucer, seen from above'].map((s) => tok.encode(s));
  const t32 = encodeTexts(rt('fp32'), model, ids),
    t16 = encodeTexts(rt('bf16'), model, ids);
  assert.ok(differs(t16, t32), 'vit-b-32 texts: the bf16 run really went through bf16 GEMMs');
  rowCosines(t16, t32, 2).forEach((c, i) => assert.ok(c >= 0.999, `vit-b-32 text ${i}: cosine ${c}`));
});
