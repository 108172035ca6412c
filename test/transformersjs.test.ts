// The real client: @huggingface/transformers (transformers.js, Node, local folder, remote models off) loads our
// exported folders and gives the engine's text/image embeddings and zero-shot probabilities.
// Dims: E projection dim (24), images [N,3,32,32], texts padded to the batch's longest sequence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import sharp from 'sharp';
import { join } from 'node:path';
import {
  env,
  AutoTokenizer,
  AutoProcessor,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  RawImage,
  Tensor,
  pipeline,
} from '@huggingface/transformers';
import { makeTempDir, preprocessorConfig, removeDir, tinyGeometry } from './helpers/tiny.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { saveCheckpoint } from '../src/io/checkpoint.ts';
import { writeJsonAtomic } from '../src/io/atomic.ts';
import { ClipTokenizer, loadTokenizerFromFolder } from '../src/io/tokenizer.ts';
import { writeVocabMerges } from '../src/io/tokenizer-files.ts';
import { loadPreprocessorConfig, preprocessImage } from '../src/io/preprocess.ts';
import { initClipModel } from '../src/model/init.ts';
import { clipLogits, encodeImages, encodeTexts } from '../src/model/encode.ts';
import type { ClipModel } from '../src/model/types.ts';
import { exportModel } from '../src/export/export.ts';
import { maxRelDiff, rowCosines } from '../src/export/verify.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 2, seed: 0, log: silentLogger };
const root = makeTempDir('mope-tjs-');
test.after(() => removeDir(root));

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = root + '/';

const IMAGES = ['chelsea.png', 'coffee.png', 'odd_37x301.png'].map((f) =>
  join(import.meta.dirname, 'golden/images', f),
);
const TEXTS = ['a photo of a cat', 'A cup of COFFEE, on a table!', 'hi', 'naïve café façade — 2 dogs & 3 cats'];

/** A checkpoint folder with larger-than-default random weights (so embeddings differ visibly), exported to `name`. */
async function exported(name: string, model: ClipModel): Promise<string> {
  const src = join(root, `${name}-src`);
  mkdirSync(src);
  saveCheckpoint(model, src);
  writeVocabMerges(ClipTokenizer.fromBundledVocab(), src);
  writeJsonAtomic(join(src, 'preprocessor_config.json'), preprocessorConfig(model.config.vision.imageSize));
  await exportModel(src, join(root, name), { quantize: 'fp16,q8' });
  return src;
}

const dense = initClipModel(tinyGeometry(), 21, { std: 0.15, perturbNorms: true });
const pruned = initClipModel(
  tinyGeometry({
    act: 'gelu',
    widths: { text: { heads: [3, 0, 4], ffn: [20, 64, 0] }, vision: { heads: [0, 2], ffn: [96, 7] } },
  }),
  22,
  { std: 0.15, perturbNorms: true },
);

for (const [name, model] of [
  ['dense', dense],
  ['pruned', pruned],
] as const) {
  test(`${name}: transformers.js tokenizer, text and image embeddings equal the engine's`, async (t) => {
    const src = await exported(name, model);
    const E = model.config.projectionDim,
      S = model.config.vision.imageSize;
    const ours = loadTokenizerFromFolder(src);
    const tok = await AutoTokenizer.from_pretrained(name);
    const ids = TEXTS.map((x) => ours.encode(x));
    for (let i = 0; i < TEXTS.length; i++) {
      const theirs = (tok(TEXTS[i]!).input_ids as Tensor).tolist() as bigint[][];
      assert.deepEqual(theirs[0]!.map(Number), ids[i], `token ids of "${TEXTS[i]}"`);
    }
    const textModel = await CLIPTextModelWithProjection.from_pretrained(name);
    const inputs = tok(TEXTS, { padding: true, truncation: true });
    const { text_embeds } = await textModel(inputs);
    const ref = encodeTexts(rt, model, ids);
    const tcos = Math.min(...rowCosines(text_embeds.data as Float32Array, ref, E));
    assert.ok(tcos >= 0.9999, `text cosine ${tcos}`);

    // Same pixel_values on both sides.
    const cfg = await loadPreprocessorConfig(src, S);
    const px = new Float32Array(IMAGES.length * 3 * S * S);
    for (let i = 0; i < IMAGES.length; i++)
      await preprocessImage(IMAGES[i]!, cfg, px.subarray(i * 3 * S * S, (i + 1) * 3 * S * S));
    const visionModel = await CLIPVisionModelWithProjection.from_pretrained(name);
    const { image_embeds } = await visionModel({ pixel_values: new Tensor('float32', px, [IMAGES.length, 3, S, S]) });
    const iref = encodeImages(rt, model, px, IMAGES.length);
    const icos = Math.min(...rowCosines(image_embeds.data as Float32Array, iref, E));
    assert.ok(icos >= 0.9999, `image cosine (same pixel_values) ${icos}`);

    // Full pipeline from the image files: transformers.js' own decode + resize vs ours.
    const processor = await AutoProcessor.from_pretrained(name);
    const cosines: number[] = [];
    let pxDiff = 0;
    for (let i = 0; i < IMAGES.length; i++) {
      const { pixel_values } = await processor(await RawImage.read(IMAGES[i]!));
      assert.deepEqual(pixel_values.dims, [1, 3, S, S]);
      const theirs = pixel_values.data as Float32Array;
      const mine = px.subarray(i * 3 * S * S, (i + 1) * 3 * S * S);
      for (let j = 0; j < theirs.length; j++) pxDiff = Math.max(pxDiff, Math.abs(theirs[j]! - mine[j]!));
      const { image_embeds: e } = await visionModel({ pixel_values });
      cosines.push(rowCosines(e.data as Float32Array, iref.subarray(i * E, (i + 1) * E), E)[0]!);
    }
    const pipeCos = Math.min(...cosines);
    assert.ok(pipeCos > 0.95, `image cosine through transformers.js preprocessing ${pipeCos}`);
    t.diagnostic(
      `${name}: text cosine ${tcos.toFixed(7)} (max rel diff ${maxRelDiff(text_embeds.data as Float32Array, ref).toExponential(2)}), ` +
        `image cosine (same pixels) ${icos.toFixed(7)}, image cosine through transformers.js preprocessing ` +
        `${cosines.map((c) => c.toFixed(5)).join(' / ')} (max |Δ pixel_values| ${pxDiff.toFixed(3)})`,
    );
  });
}

/** A smooth 40×36 RGB image: close to the 32 px input, so both resizers agree closely on it. */
async function smoothImage(path: string): Promise<string> {
  const W = 40,
    H = 36,
    rgb = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      rgb[o] = Math.round(127 + 120 * Math.sin(x / 7));
      rgb[o + 1] = Math.round((255 * y) / (H - 1));
      rgb[o + 2] = Math.round(127 + 100 * Math.cos((x + y) / 9));
    }
  }
  await sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
    .png()
    .toFile(path);
  return path;
}

function softmax(logits: Float32Array): number[] {
  const mx = Math.max(...logits);
  const ex = Array.from(logits, (l) => Math.exp(l - mx));
  const z = ex.reduce((a, b) => a + b, 0);
  return ex.map((e) => e / z);
}

test('zero-shot-image-classification pipeline runs end to end and agrees with the engine', async (t) => {
  const model = dense;
  const src = join(root, 'dense-src');
  const labels = ['cat', 'cup of coffee', 'bicycle', 'tree'];
  const E = model.config.projectionDim,
    S = model.config.vision.imageSize;
  const cfg = await loadPreprocessorConfig(src, S);
  const ours = loadTokenizerFromFolder(src);
  const te = encodeTexts(
    rt,
    model,
    labels.map((l) => ours.encode(`This is a photo of ${l}`)),
  );
  const processor = await AutoProcessor.from_pretrained('dense');
  const smooth = await smoothImage(join(root, 'smooth.png'));
  for (const dtype of ['fp32', 'fp16', 'q8'] as const) {
    const classifier = await pipeline('zero-shot-image-classification', 'dense', { dtype });
    // samePixels: the engine on transformers.js' own pixel_values (checks model + logits + softmax);
    // ownPipeline: the engine with its own (PIL-exact) preprocessing of the file.
    const worst = { samePixels: 0, ownPipeline: 0, ownPipelineSmooth: 0 };
    for (const image of [...IMAGES, smooth]) {
      const result = (await classifier(image, labels)) as { label: string; score: number }[];
      assert.deepEqual(result.map((r) => r.label).sort(), [...labels].sort());
      const sum = result.reduce((s, r) => s + r.score, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
      const { pixel_values } = await processor(await RawImage.read(image));
      const viaTheirs = softmax(
        clipLogits(
          rt,
          te,
          labels.length,
          encodeImages(rt, model, pixel_values.data as Float32Array, 1),
          1,
          E,
          model.weights.logitScale[0]!,
        ),
      );
      const viaOurs = softmax(
        clipLogits(
          rt,
          te,
          labels.length,
          encodeImages(rt, model, await preprocessImage(image, cfg), 1),
          1,
          E,
          model.weights.logitScale[0]!,
        ),
      );
      for (const r of result) {
        const k = labels.indexOf(r.label);
        worst.samePixels = Math.max(worst.samePixels, Math.abs(r.score - viaTheirs[k]!));
        if (image === smooth)
          worst.ownPipelineSmooth = Math.max(worst.ownPipelineSmooth, Math.abs(r.score - viaOurs[k]!));
        else worst.ownPipeline = Math.max(worst.ownPipeline, Math.abs(r.score - viaOurs[k]!));
      }
    }
    assert.ok(
      worst.samePixels < (dtype === 'fp32' ? 1e-4 : dtype === 'fp16' ? 2e-3 : 0.02),
      `${dtype}: ${JSON.stringify(worst)}`,
    );
    assert.ok(worst.ownPipelineSmooth < (dtype === 'q8' ? 0.03 : 0.01), `${dtype}: ${JSON.stringify(worst)}`);
    t.diagnostic(
      `zero-shot ${dtype}: max |Δ probability| vs the engine: same pixel_values ${worst.samePixels.toExponential(2)}, ` +
        `engine's own preprocessing ${worst.ownPipelineSmooth.toExponential(2)} (40×36 image) / ${worst.ownPipeline.toExponential(2)} ` +
        "(photos downscaled ~10× to 32 px, where sharp's bicubic and PIL's antialiased bicubic part most)",
    );
    await classifier.dispose();
  }
});
