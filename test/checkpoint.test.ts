// Tests for config.json parsing/serialising, checkpoint load/save (HF, OpenAI, OpenCLIP, sharded), init and errors.
// Dims: the tiny model of test/helpers/tiny.ts unless a test says otherwise.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CheckpointError, ConfigError } from '../src/errors.ts';
import {
  copyAuxFiles,
  countConfigParameters,
  countParameters,
  loadCheckpoint,
  loadConfig,
  saveCheckpoint,
} from '../src/io/checkpoint.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import { roundToF16InPlace } from '../src/io/fp16.ts';
import { SafetensorsReader } from '../src/io/safetensors.ts';
import { parseClipConfig, serializeClipConfig } from '../src/model/config.ts';
import { GEOMETRIES, configFromGeometry, initClipModel } from '../src/model/init.ts';
import type { ClipGeometry } from '../src/model/init.ts';
import type { ClipConfig, ClipModel } from '../src/model/types.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import type { TinyOptions } from './helpers/tiny.ts';

const root = makeTempDir('mope-ckpt-');
after(() => removeDir(root));
let n = 0;
function fresh(): string {
  const d = join(root, `c${n++}`);
  mkdirSync(d);
  return d;
}

function tiny(opts: TinyOptions = {}): { dir: string; model: ClipModel } {
  const dir = fresh();
  return { dir, model: writeTinyCheckpoint(dir, opts) };
}

/** Config fields that define the model (raw excluded: it records the file, not the model). */
function modelConfig(c: ClipConfig): Omit<ClipConfig, 'raw'> {
  const { raw: _raw, ...rest } = c;
  return rest;
}

function assertSameWeights(a: ClipModel, b: ClipModel): void {
  const sa = toStateDict(a);
  const sb = toStateDict(b);
  assert.deepEqual([...sa.keys()].sort(), [...sb.keys()].sort());
  for (const [k, t] of sa) {
    const u = sb.get(k)!;
    assert.deepEqual(u.shape, t.shape, k);
    assert.ok(
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(
        Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength),
      ),
      `values of ${k}`,
    );
  }
}

function expectError(
  fn: () => unknown,
  type: typeof CheckpointError | typeof ConfigError,
  ...fragments: string[]
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message should mention '${f}': ${e.message}`);
    return true;
  });
}

describe('init', () => {
  test('seeded init is deterministic and standard geometries have the real parameter counts', () => {
    const a = initClipModel('tiny', 7);
    const b = initClipModel('tiny', 7);
    const c = initClipModel('tiny', 8);
    assertSameWeights(a, b);
    assert.notDeepEqual(a.weights.text.layers[0]!.qkvW, c.weights.text.layers[0]!.qkvW);
    assert.equal(countParameters(a), countConfigParameters(a.config));
    assert.equal(countConfigParameters(configFromGeometry('vit-b-32')), 151_277_313);
    assert.equal(countConfigParameters(configFromGeometry('vit-b-16')), 149_620_737);
    assert.equal(countConfigParameters(configFromGeometry('vit-l-14')), 427_616_513);
    const w = a.weights.text.layers[0]!;
    assert.ok(w.ln1W.every((x) => x === 1) && w.ln1B.every((x) => x === 0));
    assert.ok(Math.abs(a.weights.logitScale[0]! - Math.log(1 / 0.07)) < 1e-6);
    let s = 0;
    let s2 = 0;
    for (const x of a.weights.text.tokenEmbedding) {
      s += x;
      s2 += x * x;
    }
    const len = a.weights.text.tokenEmbedding.length;
    assert.ok(Math.abs(s / len) < 1e-3 && Math.abs(Math.sqrt(s2 / len) - 0.02) < 1e-3, 'N(0, 0.02)');
  });
});

describe('checkpoint save -> load', () => {
  test('F32 round trip is exact and writes HF names', () => {
    const model = initClipModel('tiny', 3, { perturbNorms: true });
    const dir = fresh();
    saveCheckpoint(model, dir);
    const back = loadCheckpoint(dir);
    assertSameWeights(model, back);
    assert.deepEqual(modelConfig(back.config), modelConfig(model.config));
    const r = SafetensorsReader.open(join(dir, 'model.safetensors'));
    assert.ok(r.has('text_model.encoder.layers.1.self_attn.k_proj.weight'));
    assert.deepEqual(r.info('logit_scale').shape, []);
    assert.equal(r.metadata.format, 'pt');
    assert.equal(r.names().length, 2 * 16 * 2 + 4 + 7 + 3);
    r.close();
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.torch_dtype, 'float32');
    assert.equal(cfg.mope_clip, undefined, 'dense model: no mope_clip field');
    // q/k/v split back in order: q_proj = first third of the fused rows.
    const q = SafetensorsReader.open(join(dir, 'model.safetensors'));
    const A = 48; // vision: 4 heads of 12
    assert.deepEqual(
      q.readFloat32('vision_model.encoder.layers.0.self_attn.v_proj.bias'),
      model.weights.vision.layers[0]!.qkvB.slice(2 * A, 3 * A),
    );
    q.close();
  });

  test('F16 round trip equals F16-rounded weights', () => {
    const model = initClipModel('tiny', 4);
    const dir = fresh();
    saveCheckpoint(model, dir, { dtype: 'F16' });
    const back = loadCheckpoint(dir);
    const sd = toStateDict(back);
    for (const [k, t] of toStateDict(model)) assert.deepEqual(sd.get(k)!.data, roundToF16InPlace(t.data.slice()), k);
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype, 'float16');
  });

  test('per-layer widths (pruned model) round trip through mope_clip', () => {
    const { dir, model } = tiny({
      widths: {
        text: { heads: [3, 1], ffn: [40, 16], layerMap: [0, 1] },
        vision: { heads: [4, 2, 0], ffn: [96, 50, 7], layerMap: [0, 2, 5] },
      },
      act: 'gelu',
    });
    const back = loadCheckpoint(dir);
    assertSameWeights(model, back);
    assert.deepEqual(back.config.vision.heads, [4, 2, 0]);
    assert.deepEqual(back.config.vision.ffn, [96, 50, 7]);
    assert.deepEqual(back.config.vision.layerMap, [0, 2, 5]);
    assert.equal(back.config.vision.headDim, 12);
    assert.equal(back.config.text.act, 'gelu');
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.vision_config.num_hidden_layers, 3);
    assert.equal(cfg.vision_config.num_attention_heads, 4, 'original head count kept so HF derives the head size');
    assert.deepEqual(cfg.mope_clip.vision, { heads: [4, 2, 0], intermediate: [96, 50, 7], layer_map: [0, 2, 5] });
    assert.ok(cfg.mope_clip.text);
    // Saving the loaded model again gives the same files' content.
    const dir2 = fresh();
    saveCheckpoint(back, dir2);
    assertSameWeights(back, loadCheckpoint(dir2));
    assert.deepEqual(JSON.parse(readFileSync(join(dir2, 'config.json'), 'utf8')).mope_clip, cfg.mope_clip);
  });

  test('uniform FFN pruning stays plain HF (intermediate_size = the width, no mope_clip)', () => {
    const { dir } = tiny({ widths: { text: { ffn: [48, 48] } } });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.equal(cfg.text_config.intermediate_size, 48);
    assert.equal(cfg.mope_clip, undefined);
    assert.deepEqual(loadCheckpoint(dir).config.text.ffn, [48, 48]);
  });

  test('loading a single .safetensors path with config.json beside it', () => {
    const { dir, model } = tiny();
    assertSameWeights(model, loadCheckpoint(join(dir, 'model.safetensors')));
  });
});

describe('checkpoint naming variants', () => {
  test('HF-named and OpenAI-named copies of one model load to identical weights', () => {
    const hf = tiny({ seed: 11 });
    const oa = tiny({ seed: 11, naming: 'openai' });
    assert.ok(
      SafetensorsReader.open(join(oa.dir, 'model.safetensors')).has('transformer.resblocks.0.attn.in_proj_weight'),
    );
    const a = loadCheckpoint(hf.dir);
    const b = loadCheckpoint(oa.dir);
    assertSameWeights(a, b);
    assertSameWeights(hf.model, b);
  });

  test('OpenCLIP nn.Linear text_projection.weight form', () => {
    const hf = tiny({ seed: 12 });
    const oc = tiny({ seed: 12, naming: 'openai', openClipLinearProjection: true });
    assertSameWeights(loadCheckpoint(hf.dir), loadCheckpoint(oc.dir));
  });

  test('OpenAI names without config.json: geometry inferred as build_model does', () => {
    // 64-wide heads, as OpenAI checkpoints have, so the head count can be inferred.
    const geometry: ClipGeometry = {
      text: { hidden: 128, layers: 2, heads: 2, ffn: 512, vocabSize: 300, maxPositions: 16 },
      vision: { hidden: 192, layers: 3, heads: 3, ffn: 768, imageSize: 48, patchSize: 16 },
      projectionDim: 40,
    };
    const hf = tiny({ geometry, seed: 5 });
    const oa = tiny({ geometry, seed: 5, naming: 'openai', withConfig: false });
    const b = loadCheckpoint(oa.dir);
    assertSameWeights(loadCheckpoint(hf.dir), b);
    assert.deepEqual(modelConfig(b.config), modelConfig(hf.model.config));
    assert.equal(b.config.text.act, 'quick_gelu');
    assert.equal(b.config.vision.imageSize, 48);
  });

  test('OpenAI names without config.json and non-64 heads: clear error', () => {
    const { dir } = tiny({ naming: 'openai', withConfig: false });
    expectError(() => loadCheckpoint(dir), CheckpointError, 'model.safetensors', 'multiple of 64', 'config.json');
  });

  test('HF names without config.json: ConfigError', () => {
    const { dir } = tiny({ withConfig: false });
    expectError(() => loadCheckpoint(dir), ConfigError, 'config.json', 'not found');
  });

  test('legacy position_ids (I64) and OpenAI scalar entries are ignored', () => {
    const { dir, model } = tiny({
      mutateTensors: (t) => {
        t.set('text_model.embeddings.position_ids', {
          shape: [1, 77],
          data: new BigInt64Array(77).map((_, i) => BigInt(i)),
          dtype: 'I64',
        });
        t.set('vision_model.embeddings.position_ids', { shape: [1, 17], data: new BigInt64Array(17), dtype: 'I64' });
        t.set('context_length', { shape: [], data: new BigInt64Array([77n]), dtype: 'I64' });
      },
    });
    assertSameWeights(model, loadCheckpoint(dir));
  });

  test('sharded model.safetensors.index.json', () => {
    const { dir, model } = tiny({ shards: 3, dtype: 'F32' });
    assert.ok(existsSync(join(dir, 'model.safetensors.index.json')));
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    assertSameWeights(model, loadCheckpoint(dir));
  });

  test('sharded index naming a tensor its shard lacks', () => {
    const { dir } = tiny({ shards: 2 });
    const p = join(dir, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(p, 'utf8'));
    idx.weight_map['logit_scale'] = idx.weight_map['logit_scale'].includes('00001')
      ? 'model-00002-of-00002.safetensors'
      : 'model-00001-of-00002.safetensors';
    writeFileSync(p, JSON.stringify(idx));
    expectError(() => loadCheckpoint(dir), CheckpointError, p, "'logit_scale'", 'no such tensor');
  });

  test('sharded index pointing at a missing shard', () => {
    const { dir } = tiny({ shards: 2 });
    const p = join(dir, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(p, 'utf8'));
    idx.weight_map['logit_scale'] = 'model-00009-of-00009.safetensors';
    writeFileSync(p, JSON.stringify(idx));
    expectError(() => loadCheckpoint(dir), CheckpointError, p, 'model-00009-of-00009.safetensors', 'does not exist');
  });
});

describe('checkpoint errors', () => {
  test('missing tensor names the file, tensor and expected shape', () => {
    const { dir } = tiny({ mutateTensors: (t) => t.delete('vision_model.encoder.layers.1.mlp.fc2.weight') });
    expectError(
      () => loadCheckpoint(dir),
      CheckpointError,
      join(dir, 'model.safetensors'),
      "'vision_model.encoder.layers.1.mlp.fc2.weight'",
      'missing',
      '[48, 96]',
    );
  });

  test('wrong-shaped tensor names the file, tensor, found and expected shapes', () => {
    const { dir } = tiny({
      mutateTensors: (t) =>
        t.set('text_model.encoder.layers.0.mlp.fc1.weight', { shape: [65, 32], data: new Float32Array(65 * 32) }),
    });
    expectError(
      () => loadCheckpoint(dir),
      CheckpointError,
      join(dir, 'model.safetensors'),
      "'text_model.encoder.layers.0.mlp.fc1.weight'",
      'has shape [65, 32]',
      'expected [64, 32]',
    );
  });

  test('wrong-shaped OpenAI tensor is reported under its own name and source layout', () => {
    const { dir } = tiny({
      naming: 'openai',
      mutateTensors: (t) => t.set('visual.proj', { shape: [24, 48], data: new Float32Array(24 * 48) }),
    });
    expectError(
      () => loadCheckpoint(dir),
      CheckpointError,
      "'visual.proj'",
      '[24, 48]',
      'expected [48, 24]',
      'visual_projection.weight',
    );
  });

  test('unexpected extra tensor', () => {
    const { dir } = tiny({
      mutateTensors: (t) =>
        t.set('text_model.encoder.layers.2.mlp.fc1.bias', { shape: [64], data: new Float32Array(64) }),
    });
    expectError(
      () => loadCheckpoint(dir),
      CheckpointError,
      'unexpected tensor',
      "'text_model.encoder.layers.2.mlp.fc1.bias'",
      '[64]',
    );
  });

  test('missing config field falls back to the HF default, which then mismatches the weights', () => {
    const { dir } = tiny({
      mutateConfig: (c) => {
        delete (c.text_config as Record<string, unknown>).hidden_size;
      },
    });
    expectError(
      () => loadCheckpoint(dir),
      CheckpointError,
      'model.safetensors',
      "'text_model.embeddings.token_embedding.weight'",
      '[49408, 32]',
      'expected [49408, 512]',
    );
  });

  test('config field of the wrong type names config.json and the field', () => {
    const { dir } = tiny({
      mutateConfig: (c) => {
        (c.vision_config as Record<string, unknown>).num_hidden_layers = '2';
      },
    });
    expectError(
      () => loadCheckpoint(dir),
      ConfigError,
      join(dir, 'config.json'),
      "'vision_config.num_hidden_layers'",
      'integer',
      '"2"',
    );
  });

  test('truncated weights file', () => {
    const { dir } = tiny();
    const p = join(dir, 'model.safetensors');
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 100));
    expectError(() => loadCheckpoint(dir), CheckpointError, p, 'truncated');
  });

  test('no weights at all / pickle only', () => {
    const d = fresh();
    expectError(() => loadCheckpoint(d), CheckpointError, d, 'model.safetensors');
    writeFileSync(join(d, 'pytorch_model.bin'), 'x');
    expectError(() => loadCheckpoint(d), CheckpointError, 'pytorch_model.bin', 'not supported');
    expectError(() => loadCheckpoint(join(d, 'nope')), CheckpointError, 'does not exist');
  });
});

describe('config.json parsing', () => {
  const base = () => serializeClipConfig(configFromGeometry('tiny'));

  test('HF defaults fill absent fields', () => {
    const c = parseClipConfig({}, 'x/config.json');
    assert.equal(c.text.hidden, 512);
    assert.deepEqual(c.text.heads, new Array(12).fill(8));
    assert.equal(c.text.headDim, 64);
    assert.equal(c.vision.hidden, 768);
    assert.equal(c.vision.patchSize, 32);
    assert.equal(c.projectionDim, 512);
    assert.equal(c.text.act, 'quick_gelu');
    assert.equal(c.text.eosTokenId, 49407);
    assert.equal(c.text.legacyArgmaxPooling, false);
    assert.equal(c.text.padTokenId, 1);
  });

  test('serialise -> parse round trip of every geometry', () => {
    for (const g of Object.keys(GEOMETRIES) as (keyof typeof GEOMETRIES)[]) {
      const c = configFromGeometry(g);
      assert.deepEqual(modelConfig(parseClipConfig(serializeClipConfig(c))), modelConfig(c), g);
    }
  });

  test('legacy eos_token_id 2 -> argmax pooling with effective eos 49407, kept on save', () => {
    const j = base();
    (j.text_config as Record<string, unknown>).eos_token_id = 2;
    const c = parseClipConfig(j);
    assert.equal(c.text.legacyArgmaxPooling, true);
    assert.equal(c.text.eosTokenId, 49407);
    assert.equal((serializeClipConfig(c).text_config as Record<string, unknown>).eos_token_id, 2);
  });

  test('legacy text_config_dict / vision_config_dict overwrite text_config / vision_config', () => {
    const j = base();
    (j.text_config as Record<string, unknown>).eos_token_id = 2;
    j.text_config_dict = { hidden_size: 64, num_attention_heads: 2 };
    j.vision_config_dict = { hidden_size: 96, num_attention_heads: 4, patch_size: 16, image_size: 64 };
    const c = parseClipConfig(j);
    assert.equal(c.text.hidden, 64);
    assert.equal(c.text.heads.length, 12, 'text_config fields are replaced by defaults + the dict');
    assert.equal(c.text.eosTokenId, 49407);
    assert.equal(c.text.legacyArgmaxPooling, false);
    assert.equal(c.vision.patchSize, 16);
    const out = serializeClipConfig(c);
    assert.equal(out.text_config_dict, undefined);
    assert.deepEqual(modelConfig(parseClipConfig(out)), modelConfig(c));
  });

  const bad: [string, (j: Record<string, any>) => void, string[]][] = [
    [
      'non-integer',
      (j) => {
        j.text_config.hidden_size = 32.5;
      },
      ["'text_config.hidden_size'", 'integer', '32.5'],
    ],
    [
      'not divisible by heads',
      (j) => {
        j.vision_config.num_attention_heads = 5;
      },
      ["'vision_config.hidden_size'", '(48)', 'not divisible', '(5)'],
    ],
    [
      'gelu_new unsupported',
      (j) => {
        j.text_config.hidden_act = 'gelu_new';
      },
      ["'text_config.hidden_act'", 'unsupported', 'gelu_new'],
    ],
    [
      'gelu_pytorch_tanh unsupported',
      (j) => {
        j.vision_config.hidden_act = 'gelu_pytorch_tanh';
      },
      ['unsupported'],
    ],
    [
      'unknown activation',
      (j) => {
        j.vision_config.hidden_act = 'relu';
      },
      ["'vision_config.hidden_act'", '"relu"'],
    ],
    [
      'negative eps',
      (j) => {
        j.vision_config.layer_norm_eps = -1;
      },
      ["'vision_config.layer_norm_eps'", 'positive'],
    ],
    [
      'sub-config not an object',
      (j) => {
        j.text_config = 3;
      },
      ["'text_config'", 'object'],
    ],
    [
      'projection_dim string',
      (j) => {
        j.projection_dim = '24';
      },
      ["'projection_dim'", 'integer'],
    ],
    [
      'wrong model_type',
      (j) => {
        j.model_type = 'siglip';
      },
      ["'model_type'", 'siglip'],
    ],
    [
      'mope_clip heads wrong length',
      (j) => {
        j.mope_clip = { text: { heads: [4] } };
      },
      ["'mope_clip.text.heads'", '1 entries', 'expected 2'],
    ],
    [
      'mope_clip heads above original',
      (j) => {
        j.mope_clip = { vision: { heads: [5, 4] } };
      },
      ["'mope_clip.vision.heads[0]'", '[0, 4]', '5'],
    ],
    [
      'mope_clip layer_map not increasing',
      (j) => {
        j.mope_clip = { text: { layer_map: [3, 1] } };
      },
      ["'mope_clip.text.layer_map'", 'increasing'],
    ],
    [
      'mope_clip intermediate non-integer',
      (j) => {
        j.mope_clip = { text: { intermediate: [3, 'x'] } };
      },
      ["'mope_clip.text.intermediate[1]'"],
    ],
  ];
  for (const [name, mutate, frags] of bad) {
    test(`ConfigError: ${name}`, () => {
      const j = base() as Record<string, any>;
      mutate(j);
      expectError(() => parseClipConfig(j, '/m/config.json'), ConfigError, '/m/config.json', ...frags);
    });
  }

  test('loadConfig reports bad JSON in config.json', () => {
    const d = fresh();
    writeFileSync(join(d, 'config.json'), '{"text_config": ');
    expectError(() => loadConfig(d), ConfigError, join(d, 'config.json'), 'not valid JSON');
  });

  test('unmodelled fields of the original config.json are kept', () => {
    const j = base();
    j.transformers_version = '4.40.0';
    (j.text_config as Record<string, unknown>).attention_dropout = 0.1;
    const out = serializeClipConfig(parseClipConfig(j));
    assert.equal(out.transformers_version, '4.40.0');
    assert.equal((out.text_config as Record<string, unknown>).attention_dropout, 0.1);
  });
});

describe('aux files', () => {
  test('copyAuxFiles copies the tokenizer / preprocessor files that exist', () => {
    const src = fresh();
    writeFileSync(join(src, 'vocab.json'), '{}');
    writeFileSync(join(src, 'merges.txt'), '#version: 0.2\n');
    writeFileSync(join(src, 'preprocessor_config.json'), '{}');
    writeFileSync(join(src, 'other.txt'), 'x');
    const dst = join(fresh(), 'sub');
    assert.deepEqual(copyAuxFiles(src, dst).sort(), ['merges.txt', 'preprocessor_config.json', 'vocab.json']);
    assert.deepEqual(readdirSync(dst).sort(), ['merges.txt', 'preprocessor_config.json', 'vocab.json']);
  });

  test('writeTinyCheckpoint withTokenizer writes vocab.json, merges.txt, preprocessor_config.json', () => {
    const { dir } = tiny({ withTokenizer: true });
    for (const f of ['vocab.json', 'merges.txt', 'preprocessor_config.json']) assert.ok(existsSync(join(dir, f)), f);
    const pp = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
    assert.deepEqual(pp.crop_size, { height: 32, width: 32 });
  });
});
