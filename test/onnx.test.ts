// ONNX export tests: onnxruntime-node runs the exported graphs on real token ids and random pixels and matches the
// engine (dense and pruned non-uniform tiny models), variants load, opsets, external data, bad input, CLI.
// Dims: B batch, S tokens, E projection dim (24), images [B,3,32,32].
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/io/checkpoint.ts';
import { loadTokenizerFromFolder, ClipTokenizer } from '../src/io/tokenizer.ts';
import { initClipModel } from '../src/model/init.ts';
import { clipLogits, encodeImages, encodeTexts, normalizeRows } from '../src/model/encode.ts';
import type { ClipModel } from '../src/model/types.ts';
import { exportModel, type ExportReport } from '../src/export/export.ts';
import { ConfigError } from '../src/errors.ts';
import { runEval } from '../src/eval/run.ts';
import { maxAbsDiff, rowCosines } from './helpers/compare.ts';
import { lcgUniform } from './helpers/random.ts';
import type { ZeroshotResult } from '../src/eval/zeroshot.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 2, seed: 0, log: silentLogger };
const root = makeTempDir('mope-onnx-');
test.after(() => removeDir(root));

const TEXTS = [
  'a photo of a cat',
  'hi',
  'a very long caption about a dog running across a green field chasing a frisbee, at noon',
  'sneaker',
];

const i64 = (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a), (x) => BigInt(x));

async function session(path: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path);
}

const randomPixels = (n: number, seed: number) => lcgUniform(n, seed, -2, 2);

/** How far an ONNX output is from the engine's: max |difference| / max(1, max |engine|), and the least row cosine. */
interface Agreement {
  scaledMaxAbs: number;
  minCos: number;
}

function agreement(onnx: Float32Array, engine: Float32Array, E: number): Agreement {
  let scale = 1;
  for (const x of engine) scale = Math.max(scale, Math.abs(x));
  return { scaledMaxAbs: maxAbsDiff(onnx, engine) / scale, minCos: Math.min(...rowCosines(onnx, engine, E)) };
}

/**
 * The fp32 graphs compute what the engine computes, up to float32 rounding in another order of operations:
 * max |onnx − engine| ≤ 1e-4·max(1, max |engine|) and every row's cosine ≥ 0.9999. A NaN fails both
 * (maxAbsDiff is Infinity, the cosine NaN).
 */
function assertAgrees(diffs: Record<string, Agreement>): void {
  for (const [k, d] of Object.entries(diffs)) {
    assert.ok(d.scaledMaxAbs <= 1e-4, `${k}: max |onnx − engine| / max(1, max |engine|) = ${d.scaledMaxAbs}`);
    assert.ok(d.minCos >= 0.9999, `${k}: row cosine to the engine ${d.minCos}`);
  }
}

/** Runs text_model, vision_model and model.onnx of an export on fresh inputs and compares with the engine. */
async function checkAgainstEngine(
  dir: string,
  model: ClipModel,
  tok: ClipTokenizer,
): Promise<Record<string, Agreement>> {
  const E = model.config.projectionDim,
    v = model.config.vision;
  const diffs: Record<string, Agreement> = {};
  const ids = TEXTS.map((t) => tok.encode(t));
  const ref = encodeTexts(rt, model, ids);

  // Each text alone, unpadded (several lengths).
  const text = await session(join(dir, 'onnx/text_model.onnx'));
  assert.deepEqual(text.inputNames, ['input_ids', 'attention_mask']);
  assert.deepEqual(text.outputNames, ['text_embeds']);
  const unpadded = new Float32Array(ref.length);
  for (let i = 0; i < ids.length; i++) {
    const S = ids[i]!.length;
    const r = await text.run({
      input_ids: new ort.Tensor('int64', i64(ids[i]!), [1, S]),
      attention_mask: new ort.Tensor('int64', i64(new Array(S).fill(1)), [1, S]),
    });
    unpadded.set(r.text_embeds!.data as Float32Array, i * E);
  }
  diffs['text unpadded'] = agreement(unpadded, ref, E);
  // One right-padded batch with attention_mask, as transformers.js feeds it.
  const S = Math.max(...ids.map((r) => r.length));
  const batch = tok.encodeBatchPadded(TEXTS, { contextLength: S });
  const rb = await text.run({
    input_ids: new ort.Tensor('int64', i64(batch.ids), [TEXTS.length, S]),
    attention_mask: new ort.Tensor('int64', i64(batch.attentionMask), [TEXTS.length, S]),
  });
  assert.deepEqual(rb.text_embeds!.dims, [TEXTS.length, E]);
  diffs['text padded batch'] = agreement(rb.text_embeds!.data as Float32Array, ref, E);
  await text.release();

  const Ni = 3;
  const px = randomPixels(Ni * 3 * v.imageSize * v.imageSize, 11);
  const iref = encodeImages(rt, model, px, Ni);
  const vision = await session(join(dir, 'onnx/vision_model.onnx'));
  assert.deepEqual(vision.inputNames, ['pixel_values']);
  const rv = await vision.run({ pixel_values: new ort.Tensor('float32', px, [Ni, 3, v.imageSize, v.imageSize]) });
  assert.deepEqual(rv.image_embeds!.dims, [Ni, E]);
  diffs.vision = agreement(rv.image_embeds!.data as Float32Array, iref, E);
  await vision.release();

  const full = await session(join(dir, 'onnx/model.onnx'));
  assert.deepEqual([...full.inputNames].sort(), ['attention_mask', 'input_ids', 'pixel_values']);
  assert.deepEqual(full.outputNames, ['logits_per_image', 'logits_per_text', 'text_embeds', 'image_embeds']);
  const rf = await full.run({
    input_ids: new ort.Tensor('int64', i64(batch.ids), [TEXTS.length, S]),
    attention_mask: new ort.Tensor('int64', i64(batch.attentionMask), [TEXTS.length, S]),
    pixel_values: new ort.Tensor('float32', px, [Ni, 3, v.imageSize, v.imageSize]),
  });
  const lpt = clipLogits(rt, ref, TEXTS.length, iref, Ni, E, model.weights.logitScale[0]!);
  assert.deepEqual(rf.logits_per_image!.dims, [Ni, TEXTS.length]);
  diffs['full logits_per_text'] = agreement(rf.logits_per_text!.data as Float32Array, lpt, Ni);
  const lpi = rf.logits_per_image!.data as Float32Array;
  for (let t = 0; t < TEXTS.length; t++)
    for (let i = 0; i < Ni; i++)
      assert.equal(lpi[i * TEXTS.length + t], (rf.logits_per_text!.data as Float32Array)[t * Ni + i]);
  const refNormed = normalizeRows(rt, ref, TEXTS.length, E);
  diffs['full text_embeds'] = agreement(rf.text_embeds!.data as Float32Array, refNormed, E);
  diffs['full image_embeds'] = agreement(rf.image_embeds!.data as Float32Array, normalizeRows(rt, iref, Ni, E), E);
  await full.release();
  return diffs;
}

/** Variants: each loads in onnxruntime; cosine of its embeddings to the fp32 file's. */
async function variantCosines(
  dir: string,
  model: ClipModel,
  tok: ClipTokenizer,
  suffix: string,
): Promise<{ text: number; image: number }> {
  const v = model.config.vision,
    E = model.config.projectionDim;
  const S = Math.max(...TEXTS.map((t) => tok.encode(t).length));
  const b = tok.encodeBatchPadded(TEXTS, { contextLength: S });
  const tfeeds = {
    input_ids: new ort.Tensor('int64', i64(b.ids), [TEXTS.length, S]),
    attention_mask: new ort.Tensor('int64', i64(b.attentionMask), [TEXTS.length, S]),
  };
  const px = randomPixels(2 * 3 * v.imageSize * v.imageSize, 5);
  const vfeeds = { pixel_values: new ort.Tensor('float32', px, [2, 3, v.imageSize, v.imageSize]) };
  const run = async (file: string, feeds: Record<string, ort.Tensor>, out: string) => {
    const s = await session(join(dir, 'onnx', file));
    const r = (await s.run(feeds))[out]!;
    assert.equal(r.type, 'float32', `${file}: ${out} stays float32`);
    await s.release();
    return r.data as Float32Array;
  };
  const t32 = await run('text_model.onnx', tfeeds, 'text_embeds');
  const tv = await run(`text_model${suffix}.onnx`, tfeeds, 'text_embeds');
  const i32 = await run('vision_model.onnx', vfeeds, 'image_embeds');
  const iv = await run(`vision_model${suffix}.onnx`, vfeeds, 'image_embeds');
  await run(`model${suffix}.onnx`, { ...tfeeds, ...vfeeds }, 'logits_per_image');
  return { text: Math.min(...rowCosines(tv, t32, E)), image: Math.min(...rowCosines(iv, i32, E)) };
}

/** Least row cosine of a variant's embeddings to the fp32 file's (tiny models: measured ≥ 0.99999 / 0.9993). */
const VARIANT_MIN_COSINE: Record<string, number> = { fp16: 0.9999, q8: 0.99 };

function assertVariantCosines(fp16: { text: number; image: number }, q8: { text: number; image: number }): void {
  for (const [name, c] of [
    ['fp16', fp16],
    ['q8', q8],
  ] as const) {
    const min = VARIANT_MIN_COSINE[name]!;
    assert.ok(c.text >= min && c.image >= min, `${name} least row cosine to fp32 ${JSON.stringify(c)}, want ${min}`);
  }
}

function checkReport(dir: string, quantized: boolean): ExportReport {
  const report = JSON.parse(readFileSync(join(dir, 'export_report.json'), 'utf8')) as ExportReport;
  const names = ['model', 'text_model', 'vision_model'];
  const expected = names.map((n) => `onnx/${n}.onnx`);
  if (quantized) for (const s of ['_fp16', '_quantized']) expected.push(...names.map((n) => `onnx/${n}${s}.onnx`));
  assert.deepEqual(report.files.map((f) => f.path).sort(), expected.sort());
  for (const f of report.files)
    assert.equal(f.bytes, readFileSync(join(dir, f.path)).length, `${f.path} size in report`);
  for (const f of [
    'config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'special_tokens_map.json',
    'preprocessor_config.json',
  ]) {
    assert.ok(existsSync(join(dir, f)), f);
  }
  // The export's own checks, read as numbers (a NaN fails every comparison below): fp32 files within 1e-4 of the
  // engine relative to the output's largest value; variants' rows within VARIANT_MIN_COSINE of the fp32 file's.
  for (const [path, c] of Object.entries(report.checks!)) {
    if (c.precision === 'fp32') {
      const d = Object.values(c.max_rel_diff_vs_engine!);
      assert.ok(d.length > 0 && d.every((x) => x <= 1e-4), `${path}: ${JSON.stringify(c.max_rel_diff_vs_engine)}`);
      assert.equal(c.ok, true, path);
    } else {
      const min = VARIANT_MIN_COSINE[c.precision]!;
      const cos = Object.entries(c.cosine_to_fp32!);
      assert.ok(cos.length > 0, `${path}: no cosine checks`);
      for (const [name, v] of cos) {
        assert.ok(v.min >= min && v.mean >= v.min, `${path} ${name} cosine ${JSON.stringify(v)}, expected ≥ ${min}`);
      }
    }
  }
  return report;
}

test('dense tiny checkpoint: exported graphs match the engine; fp16 and q8 variants load', async (t) => {
  const src = join(root, 'dense');
  mkdirSync(src);
  const model = writeTinyCheckpoint(src, { withTokenizer: true, seed: 4 });
  const out = join(root, 'dense-onnx');
  await exportModel(src, out, { quantize: 'fp16,q8', rt });
  const report = checkReport(out, true);
  const tok = loadTokenizerFromFolder(out);
  const diffs = await checkAgainstEngine(out, model, tok);
  assertAgrees(diffs);
  const fp16 = await variantCosines(out, model, tok, '_fp16');
  const q8 = await variantCosines(out, model, tok, '_quantized');
  assertVariantCosines(fp16, q8);
  const pre = JSON.parse(readFileSync(join(out, 'preprocessor_config.json'), 'utf8'));
  assert.equal(pre.resample, 3);
  assert.equal(pre.do_normalize, true);
  assert.deepEqual(pre.size, { shortest_edge: 32 });
  assert.deepEqual(pre.crop_size, { height: 32, width: 32 });
  const tcfg = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
  assert.equal(tcfg.model_max_length, 77);
  const q = report.files.find((f) => f.path === 'onnx/text_model_quantized.onnx')!;
  const f32 = report.files.find((f) => f.path === 'onnx/text_model.onnx')!;
  assert.ok(q.bytes < f32.bytes / 3, `q8 text file ${q.bytes} B vs fp32 ${f32.bytes} B`);
  t.diagnostic(
    `dense agreement with the engine ${JSON.stringify(diffs)}; ` +
      `fp16 min cosine ${JSON.stringify(fp16)}; q8 min cosine ${JSON.stringify(q8)}`,
  );
});

test('pruned checkpoint with non-uniform heads/FFN (incl. 0-head and 0-FFN layers, gelu) matches the engine', async (t) => {
  const model = initClipModel(
    {
      text: { hidden: 32, layers: 4, heads: [4, 0, 2, 1], ffn: [64, 17, 0, 5], headDim: 8, act: 'gelu' },
      vision: {
        hidden: 48,
        layers: 3,
        heads: [1, 4, 0],
        ffn: [0, 96, 33],
        headDim: 12,
        imageSize: 32,
        patchSize: 8,
        act: 'gelu',
      },
      projectionDim: 24,
    },
    9,
    { std: 0.2, perturbNorms: true },
  );
  const src = join(root, 'pruned');
  saveCheckpoint(model, src); // no tokenizer files: the export falls back to the bundled vocabulary
  const loaded = loadCheckpoint(src);
  assert.deepEqual(loaded.config.text.heads, [4, 0, 2, 1]);
  const out = join(root, 'pruned-onnx');
  const report = await exportModel(src, out, { quantize: ['fp16', 'q8'], rt });
  checkReport(out, true);
  assert.match(report.tokenizer_source, /bundled/);
  const tok = loadTokenizerFromFolder(out);
  const diffs = await checkAgainstEngine(out, loaded, tok);
  assertAgrees(diffs);
  const q8 = await variantCosines(out, loaded, tok, '_quantized');
  const fp16 = await variantCosines(out, loaded, tok, '_fp16');
  assertVariantCosines(fp16, q8);
  t.diagnostic(
    `pruned agreement with the engine ${JSON.stringify(diffs)}; ` +
      `fp16 ${JSON.stringify(fp16)}; q8 ${JSON.stringify(q8)}`,
  );
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.mope_clip.text.heads, [4, 0, 2, 1]);
});

test('opset 21 and external data (forced by a low threshold) load and match', async () => {
  const src = join(root, 'dense-ext');
  mkdirSync(src);
  const model = writeTinyCheckpoint(src, { withTokenizer: true, seed: 5 });
  const out = join(root, 'ext-onnx');
  const report = await exportModel(src, out, { opset: 21, rt, externalDataThreshold: 1000 });
  assert.equal(report.ir_version, 10);
  for (const f of report.files) {
    assert.ok(f.externalData, `${f.path} uses external data`);
    assert.equal(f.externalData!.path, `${f.path}_data`);
    assert.ok(f.bytes < 200_000, `${f.path} holds no big tensors (${f.bytes} B)`);
  }
  checkReport(out, false);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.deepEqual(cfg['transformers.js_config'].use_external_data_format, {
    'model.onnx': true,
    'text_model.onnx': true,
    'vision_model.onnx': true,
  });
  const diffs = await checkAgainstEngine(out, model, loadTokenizerFromFolder(out));
  assertAgrees(diffs);
});

test('bad input: non-empty out dir refused, unloadable checkpoint, unknown variant, bad opset; nothing half-written', async () => {
  const src = join(root, 'bad-src');
  mkdirSync(src);
  writeTinyCheckpoint(src, { withTokenizer: true });
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'keep.txt'), 'mine');
  await assert.rejects(
    exportModel(src, busy),
    (e: Error) => e instanceof ConfigError && /not empty.*--force/.test(e.message),
  );
  assert.deepEqual(readdirSync(busy), ['keep.txt']);

  await assert.rejects(
    exportModel(src, join(root, 'q-out'), { quantize: 'fp16,int3' }),
    (e: Error) => e instanceof ConfigError && /int3/.test(e.message),
  );
  await assert.rejects(
    exportModel(src, join(root, 'o-out'), { opset: 13 }),
    (e: Error) => e instanceof ConfigError && /opset 13/.test(e.message),
  );

  const broken = join(root, 'broken');
  mkdirSync(broken);
  writeTinyCheckpoint(broken, { withTokenizer: true });
  const st = join(broken, 'model.safetensors');
  truncateSync(st, readFileSync(st).length - 100);
  let loaderError = '';
  try {
    loadCheckpoint(broken);
  } catch (e) {
    loaderError = (e as Error).message;
  }
  assert.ok(loaderError.length > 0);
  const out = join(root, 'broken-out');
  await assert.rejects(exportModel(broken, out, { rt }), (e: Error) => e.message === loaderError);
  await assert.rejects(exportModel(join(root, 'nope'), out), /does not exist/);
  assert.ok(!existsSync(out));
  assert.deepEqual(
    readdirSync(root).filter((n) => n.includes('export-tmp') || n.includes('export-old')),
    [],
  );

  // --force replaces the folder; an empty existing folder is used without --force.
  await exportModel(src, busy, { force: true });
  assert.ok(existsSync(join(busy, 'onnx/model.onnx')) && !existsSync(join(busy, 'keep.txt')));
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await exportModel(src, empty);
  assert.ok(existsSync(join(empty, 'onnx/vision_model.onnx')));
  assert.ok(
    !existsSync(join(empty, 'export_report.json')) ||
      !JSON.parse(readFileSync(join(empty, 'export_report.json'), 'utf8')).checks,
  );
  assert.deepEqual(
    readdirSync(root).filter((n) => n.includes('export-tmp') || n.includes('export-old')),
    [],
  );
});

test('CLI: mope-clip export --model --out --quantize q8 prints the report', async () => {
  const src = join(root, 'cli-src');
  mkdirSync(src);
  writeTinyCheckpoint(src, { withTokenizer: true });
  const out = join(root, 'cli-out');
  // A child process: the test runner owns this process's stdout. main.ts does not list the command yet, so the
  // child registers it on its own program.
  const script = [
    "import { Command } from 'commander';",
    "import { register } from './src/cli/export.ts';",
    "const p = new Command('mope-clip'); register(p);",
    'await p.parseAsync(process.argv.slice(1), { from: "user" });',
  ].join('\n');
  const args = ['export', '--model', src, '--out', out, '--quantize', 'q8', '--threads', '1'];
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote onnx\/model_quantized\.onnx/);
  const written = [r.stdout];
  const report = JSON.parse(written.join('')) as ExportReport;
  assert.equal(report.files.length, 6);
  assert.ok(Object.values(report.checks!).every((c) => c.precision !== 'fp32' || c.ok));
  assert.ok(existsSync(join(out, 'onnx/model_quantized.onnx')));
});

test("--eval-data: zero-shot of every precision on a builtin set; fp32 agrees with the engine's eval", async (t) => {
  const src = join(root, 'eval-src');
  mkdirSync(src);
  writeTinyCheckpoint(src, { withTokenizer: true, seed: 8 });
  const data = 'builtin:fashion-mnist:test';
  const report = await exportModel(src, join(root, 'eval-out'), { quantize: 'q8', evalData: data, evalLimit: 100 });
  const ev = report.eval!;
  assert.equal(ev.task, 'zeroshot');
  assert.equal(ev.n.images, 100);
  assert.deepEqual(Object.keys(ev.metrics).sort(), ['fp32', 'q8']);
  // q8 against fp32: most top-1 classes unchanged, and the figures consistent with each other — the accuracies can
  // differ by no more than the share of images whose top-1 changed, and change_vs_fp32 is their difference.
  const agree = ev.top1_agreement_vs_fp32.q8!,
    f = ev.metrics.fp32!,
    q = ev.metrics.q8!;
  assert.ok(agree >= 0.8 && agree <= 1, `q8 top-1 agreement with fp32 ${agree}`);
  assert.ok(Math.abs(q.acc1! - f.acc1!) <= 1 - agree + 1e-9, `acc1 fp32 ${f.acc1}, q8 ${q.acc1}, agreement ${agree}`);
  for (const k of ['acc1', 'acc5']) {
    const change = ev.change_vs_fp32.q8![k]!;
    assert.ok(Math.abs(change - (q[k]! - f[k]!)) <= 1e-12, `change_vs_fp32.q8.${k} ${change}`);
  }
  const engine = (await runEval(rt, {
    modelDir: src,
    task: 'zeroshot',
    data,
    limit: 100,
    progress: false,
  })) as ZeroshotResult;
  assert.ok(
    Math.abs(engine.acc1 - ev.metrics.fp32!.acc1!) <= 0.02,
    `engine acc1 ${engine.acc1} vs onnx ${ev.metrics.fp32!.acc1}`,
  );
  assert.ok(
    Math.abs(engine.acc5 - ev.metrics.fp32!.acc5!) <= 0.02,
    `engine acc5 ${engine.acc5} vs onnx ${ev.metrics.fp32!.acc5}`,
  );
  t.diagnostic(`eval ${JSON.stringify(ev.metrics)}; q8 top-1 agreement ${ev.top1_agreement_vs_fp32.q8}`);
});
