// End-to-end tests of the engine CLI contracts (embed, tokenize, info, bench) through bin/mope-clip.mjs,
// on a tiny checkpoint the test writes; results are checked against the library computed in-process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { encodeImages, encodeTexts } from '../src/model/encode.ts';
import { preprocessImage, loadPreprocessorConfig } from '../src/io/preprocess.ts';
import { ClipTokenizer } from '../src/io/tokenizer.ts';
import { countParameters } from '../src/io/checkpoint.ts';
import { gflops, imageMacs, textMacs } from '../src/model/flops.ts';
import { configFromGeometry } from '../src/model/init.ts';
import type { ClipModel } from '../src/model/types.ts';
import { maxAbsDiff } from './helpers/compare.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = join(root, 'bin', 'mope-clip.mjs');
const photo = join(root, 'test', 'golden', 'images', 'chelsea.png');

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, MOPE_THREADS: '2' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

let dir = '';
let modelDir = '';
let model: ClipModel;
const rt: Runtime = { kernels: loadNativeKernels(), threads: 2, seed: 0, log: silentLogger };

before(() => {
  dir = makeTempDir('mope-cli-');
  modelDir = join(dir, 'model');
  model = writeTinyCheckpoint(modelDir, { withTokenizer: true, seed: 7 });
});
after(() => removeDir(dir));

test('tokenize prints the reference ids', () => {
  const r = cli([
    'tokenize',
    '--model',
    modelDir,
    '--text',
    'a photo of a cat',
    '--text',
    'A Photo of a DOG!!',
    '--text',
    'an ankle boot.',
    '--text',
    'itap of a {}.',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    [49406, 320, 1125, 539, 320, 2368, 49407],
    [49406, 320, 1125, 539, 320, 1929, 748, 49407],
    [49406, 550, 14777, 8087, 269, 49407],
    [49406, 529, 2728, 539, 320, 90, 92, 269, 49407],
  ]);
});

test('tokenize reads a texts file (.txt lines and .json array) and truncates to 77 keeping EOS', () => {
  const txt = join(dir, 'texts.txt');
  writeFileSync(txt, 'a photo of a cat\n\n' + 'word '.repeat(200) + '\n');
  const r = cli(['tokenize', '--model', modelDir, '--texts-file', txt]);
  assert.equal(r.code, 0, r.stderr);
  const ids = JSON.parse(r.stdout) as number[][];
  assert.equal(ids.length, 2);
  assert.equal(ids[1]!.length, 77);
  assert.equal(ids[1]![76], 49407);
  const js = join(dir, 'texts.json');
  writeFileSync(js, JSON.stringify(['an ankle boot.']));
  assert.deepEqual(JSON.parse(cli(['tokenize', '--model', modelDir, '--texts-file', js]).stdout), [
    [49406, 550, 14777, 8087, 269, 49407],
  ]);
});

test('embed writes input_ids, text_embeds and image_embeds equal to the library forward', async () => {
  const out = join(dir, 'emb.json');
  const r = cli([
    'embed',
    '--model',
    modelDir,
    '--text',
    'a photo of a cat',
    '--text',
    'a much longer caption about a dog on a red sofa',
    '--image',
    photo,
    '--image',
    photo,
    '--out',
    out,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  const j = JSON.parse(readFileSync(out, 'utf8'));
  const tok = ClipTokenizer.fromBundledVocab();
  const ids = ['a photo of a cat', 'a much longer caption about a dog on a red sofa'].map((t) => tok.encode(t));
  assert.deepEqual(j.input_ids, ids);
  const E = model.config.projectionDim;
  const te = encodeTexts(rt, model, ids);
  assert.equal(j.text_embeds.length, 2);
  assert.ok(maxAbsDiff(j.text_embeds.flat(), te) < 1e-6);
  const cfg = await loadPreprocessorConfig(modelDir, model.config.vision.imageSize);
  const px = await preprocessImage(photo, cfg);
  const ie = encodeImages(rt, model, px, 1);
  assert.equal(j.image_embeds.length, 2);
  assert.equal(j.image_embeds[0].length, E);
  assert.ok(maxAbsDiff(j.image_embeds[0], ie) < 1e-6);
  assert.ok(maxAbsDiff(j.image_embeds[1], ie) < 1e-6);
  // Unnormalised by default; --normalize gives unit rows pointing the same way.
  const norm = (v: number[]) => Math.hypot(...v);
  assert.ok(Math.abs(norm(j.text_embeds[0]) - 1) > 1e-3);
  const n = JSON.parse(cli(['embed', '--model', modelDir, '--text', 'a photo of a cat', '--normalize']).stdout);
  assert.ok(Math.abs(norm(n.text_embeds[0]) - 1) < 1e-5);
  const scale = norm(j.text_embeds[0]);
  assert.ok(
    maxAbsDiff(
      n.text_embeds[0],
      j.text_embeds[0].map((x: number) => x / scale),
    ) < 1e-6,
  );
  assert.deepEqual(n.image_embeds, []);
});

test('info --json reports widths, parameters and GFLOPs', () => {
  const r = cli(['info', '--model', modelDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.params, countParameters(model));
  assert.deepEqual(info.vision.heads, model.config.vision.heads);
  assert.deepEqual(info.text.ffn, model.config.text.ffn);
  assert.equal(info.text.params + info.vision.params + 1, info.params); // + logit_scale
  assert.ok(Math.abs(info.gflops_per_image - gflops(imageMacs(model.config))) < 1e-12);
  assert.ok(Math.abs(info.gflops_per_text - gflops(textMacs(model.config, 77))) < 1e-12);
  const text = cli(['info', '--model', modelDir]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /GFLOPs per image/);
});

test('FLOP model: ViT-B/32 is 4.4 GMACs per image and about 3 GMACs per 77-token text', () => {
  const c = configFromGeometry('vit-b-32');
  assert.ok(Math.abs(imageMacs(c) / 1e9 - 4.41) < 0.01, String(imageMacs(c)));
  assert.ok(Math.abs(textMacs(c, 77) / 1e9 - 2.98) < 0.01, String(textMacs(c, 77)));
});

test('bench prints a JSON last line with images_per_s and texts_per_s', () => {
  const r = cli(['bench', '--geometry', 'tiny', '--batch', '2', '--threads', '1', '--mode', 'infer', '--iters', '1']);
  assert.equal(r.code, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.ok(last.images_per_s > 0 && last.texts_per_s > 0);
  assert.equal(last.threads, 1);
  const bad = cli(['bench', '--geometry', 'vit-x', '--mode', 'infer']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--geometry/);
});

test('every command has --help with exit code 0', () => {
  for (const c of ['embed', 'tokenize', 'info', 'bench', 'eval', 'score', 'prune']) {
    const r = cli([c, '--help']);
    assert.equal(r.code, 0, c);
    assert.match(r.stdout, /Usage: mope-clip/);
  }
});

test('user mistakes give a one-paragraph error, a non-zero exit, no stack trace and no output file', () => {
  const out = join(dir, 'never.json');
  const cases: Array<[string[], RegExp]> = [
    [['embed', '--model', join(dir, 'missing'), '--text', 'x', '--out', out], /does not exist/],
    [['embed', '--model', modelDir, '--image', join(dir, 'nope.png'), '--out', out], /nope\.png/],
    [['embed', '--model', modelDir, '--texts-file', join(dir, 'nope.txt'), '--out', out], /nope\.txt/],
    [['info', '--model', dir], /config\.json|model\.safetensors/],
  ];
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, 'this is not a png');
  cases.push([['embed', '--model', modelDir, '--image', corrupt, '--out', out], /corrupt\.png/]);
  const noTok = join(dir, 'notok');
  writeTinyCheckpoint(noTok, { seed: 1 });
  cases.push([['embed', '--model', noTok, '--text', 'x', '--out', out], /vocab\.json|tokenizer\.json/]);
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one paragraph');
    assert.equal(existsSync(out), false);
  }
  const usage = cli(['embed', '--text', 'x']);
  assert.equal(usage.code, 2);
});

test('a corrupt weights file is refused by every command with the file named', () => {
  const bad = join(dir, 'badmodel');
  writeTinyCheckpoint(bad, { withTokenizer: true, seed: 2 });
  const w = join(bad, 'model.safetensors');
  const bytes = readFileSync(w);
  writeFileSync(w, bytes.subarray(0, bytes.length - 10));
  copyFileSync(join(modelDir, 'vocab.json'), join(bad, 'vocab.json'));
  for (const args of [
    ['info', '--model', bad],
    ['embed', '--model', bad, '--text', 'x'],
  ]) {
    const r = cli(args);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /model\.safetensors/);
  }
});
