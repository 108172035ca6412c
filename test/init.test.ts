// `mope-clip init`: every named geometry plans without allocating; tiny folders (named and from a JSON file) load with
// our loader under HF names, match the in-process initialiser, and the command refuses a non-empty --out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir } from './helpers/tiny.ts';
import { openModelFolder } from '../src/io/model-folder.ts';
import { countParameters } from '../src/io/checkpoint.ts';
import { planInit } from '../src/train/init-folder.ts';
import { GEOMETRIES, initClipModel, type GeometryName } from '../src/model/init.ts';
import { readSafetensors } from '../src/io/safetensors.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = join(root, 'bin', 'mope-clip.mjs');

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, MOPE_THREADS: '1' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

let dir = '';
before(() => {
  dir = makeTempDir('mope-init-');
});
after(() => removeDir(dir));

test('every named geometry plans its config and size without allocating weights', () => {
  // Parameter counts of the OpenAI checkpoints with these shapes.
  const expected: Record<GeometryName, number | null> = {
    tiny: null,
    'vit-b-32': 151_277_313,
    'vit-b-16': 149_620_737,
    'vit-l-14': 427_616_513,
  };
  for (const name of Object.keys(GEOMETRIES) as GeometryName[]) {
    const plan = planInit(GEOMETRIES[name]);
    if (expected[name] !== null) assert.equal(plan.parameters, expected[name], name);
    assert.equal(plan.weight_bytes, 4 * plan.parameters);
    assert.equal(plan.config.vision.heads.length, GEOMETRIES[name].vision.layers);
  }
  assert.equal(planInit(GEOMETRIES.tiny).parameters, countParameters(initClipModel('tiny', 0)));
});

test('init --geometry tiny writes a loadable HF folder equal to the seeded initialiser', () => {
  const out = join(dir, 'tiny');
  const r = cli(['init', '--geometry', 'tiny', '--seed', '5', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(j.parameters, planInit(GEOMETRIES.tiny).parameters);
  for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'preprocessor_config.json']) {
    assert.ok(existsSync(join(out, f)), f);
  }
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('.')),
    [],
    'no temporary folder left',
  );
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'clip');
  const names = [...readSafetensors(join(out, 'model.safetensors')).tensors.keys()];
  assert.ok(names.includes('vision_model.encoder.layers.0.self_attn.q_proj.weight'));
  assert.ok(names.includes('text_model.embeddings.token_embedding.weight'));
  const folder = openModelFolder(out);
  const ref = initClipModel('tiny', 5);
  assert.deepEqual(folder.model.weights.vision.layers[1].fc2W, ref.weights.vision.layers[1].fc2W);
  assert.deepEqual(folder.model.weights.text.tokenEmbedding, ref.weights.text.tokenEmbedding);
  const ids = folder.tokenizer().encode('a photo of a cat');
  assert.ok(ids.length > 2);
});

test('init reads a GEOMETRY.json with per-layer widths', async () => {
  const file = join(dir, 'geo.json');
  writeFileSync(
    file,
    JSON.stringify({
      text: { hidden: 16, layers: 2, heads: [2, 1], ffn: [32, 16], headDim: 8 },
      vision: { hidden: 24, layers: 3, heads: 3, ffn: 48, imageSize: 16, patchSize: 8 },
      projectionDim: 8,
    }),
  );
  const out = join(dir, 'custom');
  const r = cli(['init', '--geometry', file, '--seed', '1', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const folder = openModelFolder(out);
  assert.deepEqual(folder.model.config.text.heads, [2, 1]);
  assert.deepEqual(folder.model.config.text.ffn, [32, 16]);
  assert.deepEqual((await folder.preprocessor()).cropSize, { height: 16, width: 16 });
});

test('init refuses a non-empty --out, replaces it with --force, and names bad geometries', () => {
  const out = join(dir, 'busy');
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'x');
  const r = cli(['init', '--geometry', 'tiny', '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not empty/);
  assert.ok(existsSync(join(out, 'keep.txt')));
  const f = cli(['init', '--geometry', 'tiny', '--out', out, '--force']);
  assert.equal(f.code, 0, f.stderr);
  assert.ok(!existsSync(join(out, 'keep.txt')));
  assert.ok(existsSync(join(out, 'model.safetensors')));
  const bad = cli(['init', '--geometry', 'vit-z-99', '--out', join(dir, 'bad')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--geometry vit-z-99/);
  assert.ok(!existsSync(join(dir, 'bad')));
});
