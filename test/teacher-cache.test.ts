// Teacher-output cache (src/train/teacher-cache.ts): cached losses and gradients equal recomputation, across other
// batch compositions and paddings, from memory and from disk; keys change with the teacher's weights, the token
// ids and the preprocessed pixels (data or preprocessing); a memory bound evicts. Dims (tiny): C 16, L 2, E 8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../src/engine/runtime.ts';
import { silentLogger } from '../src/engine/runtime.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { configFromGeometry, initFromConfig } from '../src/model/init.ts';
import type { ClipModel } from '../src/model/types.ts';
import { createGrads, gradsByName } from '../src/model/grads.ts';
import { TrainStep, type TrainBatch } from '../src/train/step.ts';
import { TeacherCache, defaultTeacherCacheBytes, subBatch } from '../src/train/teacher-cache.ts';
import { parseTeacherCacheFlags } from '../src/cli/teacher-cache-flags.ts';
import type { LossParts } from '../src/distill/losses.ts';
import { Rng } from '../src/model/rng.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };

function tinyModel(seed: number, textLayers = 2): ClipModel {
  const c = configFromGeometry({
    text: { hidden: 16, layers: textLayers, heads: 4, ffn: 24, vocabSize: 50, maxPositions: 8 },
    vision: { hidden: 16, layers: 2, heads: 2, ffn: 20, imageSize: 8, patchSize: 4 },
    projectionDim: 8,
  });
  c.text.bosTokenId = 48;
  c.text.eosTokenId = 49;
  return initFromConfig(c, seed, { std: 0.3, perturbNorms: true });
}

/** B items of different lengths (BOS … EOS, right-padded with 0s and a 0 mask) and random pixels. */
function batch(seed: number, B = 4, T = 6): TrainBatch {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * T),
    am = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = 2 + (b % (T - 1));
    ids[b * T] = 48;
    for (let t = 1; t < len - 1; t++) ids[b * T + t] = 1 + rng.int(46);
    ids[b * T + len - 1] = 49;
    for (let t = 0; t < len; t++) am[b * T + t] = 1;
  }
  const pixels = new Float32Array(B * 3 * 64);
  rng.fillNormal(pixels, 0, 1);
  return { B, T, ids, attentionMask: am, pixels };
}

/** The same items in another order, padded to T2 ≥ T (another batch composition). */
function repad(b: TrainBatch, order: number[], T2: number): TrainBatch {
  const s = subBatch(b, order),
    ids = new Int32Array(s.B * T2),
    am = new Float32Array(s.B * T2);
  for (let i = 0; i < s.B; i++)
    for (let t = 0; t < s.T; t++) {
      ids[i * T2 + t] = s.ids[i * s.T + t]!;
      am[i * T2 + t] = Number(s.attentionMask![i * s.T + t]);
    }
  return { ...s, T: T2, ids, attentionMask: am };
}

function run(teacher: ClipModel, student: ClipModel, cache: TeacherCache | null, b: TrainBatch) {
  const grads = createGrads(student.config);
  const step = new TrainStep(rt, { student, grads, teacher, teacherCache: cache });
  const loss = step.forwardBackward(b);
  return { loss, grads: gradsByName(student.config, grads) };
}

/** Losses within tol (absolute); gradients within 10·tol relative (float32 sums of another batch composition). */
function assertClose(a: { loss: LossParts; grads: Map<string, Float32Array> }, b: typeof a, tol = 1e-6): void {
  for (const k of ['total', 'con', 'kd', 'emb', 'hid'] as const) {
    assert.ok(Math.abs(a.loss[k] - b.loss[k]) <= tol, `${k}: ${a.loss[k]} vs ${b.loss[k]}`);
  }
  for (const [name, g] of a.grads) {
    const h = b.grads.get(name)!;
    for (let i = 0; i < g.length; i++) {
      assert.ok(Math.abs(g[i]! - h[i]!) <= 10 * tol * (1 + Math.abs(h[i]!)), `${name}[${i}]: ${g[i]} vs ${h[i]}`);
    }
  }
}

test('cache hits give the losses and gradients of recomputation (≤ 1e-6), in another order and padding', () => {
  const teacher = tinyModel(3),
    student = tinyModel(5),
    cache = new TeacherCache(teacher);
  const b = batch(1);
  const first = run(teacher, student, cache, b);
  assert.deepEqual([cache.stats.hits, cache.stats.misses], [0, 4]);
  assertClose(first, run(teacher, student, null, b), 0); // a miss is the plain computation
  const b2 = repad(b, [2, 0, 3, 1], 8);
  const hit = run(teacher, student, cache, b2);
  assert.deepEqual([cache.stats.hits, cache.stats.misses], [4, 4]);
  assertClose(hit, run(teacher, student, null, b2));
  // a mixed batch: two cached items, two new ones (computed as one sub-batch)
  const mixed = subBatch({ ...batch(9), ids: b.ids, attentionMask: b.attentionMask }, [0, 1, 2, 3]);
  mixed.pixels.set(b.pixels.subarray(0, 2 * 192));
  const m = run(teacher, student, cache, mixed);
  assert.deepEqual([cache.stats.hits, cache.stats.misses], [6, 6]);
  assertClose(m, run(teacher, student, null, mixed));
});

test('a student with fewer layers maps to other teacher layers: those are computed and merged into the entry', () => {
  const teacher = tinyModel(3),
    cache = new TeacherCache(teacher),
    b = batch(2);
  run(teacher, tinyModel(5, 1), cache, b); // text map [1] (last layer) only
  const full = run(teacher, tinyModel(5), cache, b); // needs text layers 0 and 1: a miss
  assert.equal(cache.stats.misses, 8);
  assertClose(full, run(teacher, tinyModel(5), null, b));
  run(teacher, tinyModel(5, 1), cache, b);
  assert.equal(cache.stats.hits, 4);
});

test('keys change with teacher weights, token ids and preprocessed pixels; disk copy is reused by a new cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mope-tcache-'));
  try {
    const teacher = tinyModel(3),
      student = tinyModel(5),
      b = batch(3);
    const c1 = new TeacherCache(teacher, { dir });
    const ref = run(teacher, student, c1, b);
    assert.equal(readdirSync(join(dir, c1.key)).length, 4);
    // a new process: memory bound 0, everything from disk
    const c2 = new TeacherCache(teacher, { dir, memoryBytes: 0 });
    assertClose(run(teacher, student, c2, b), ref, 0);
    assert.deepEqual([c2.stats.hits, c2.stats.diskHits, c2.stats.misses], [4, 4, 0]);
    // changed weights: another key, a miss, the new teacher's losses
    const t2 = tinyModel(3);
    t2.weights.vision.layers[1]!.fc2B[0] += 1e-3;
    const c3 = new TeacherCache(t2, { dir });
    assert.notEqual(c3.key, c1.key);
    assertClose(run(t2, student, c3, b), run(t2, student, null, b), 0);
    assert.deepEqual([c3.stats.hits, c3.stats.misses], [0, 4]);
    // the precision is part of the teacher's key
    assert.notEqual(new TeacherCache(teacher, {}, 'bf16').key, c1.key);
    // other preprocessing (pixels scaled) or other data (one token) of the same item: other keys
    const c4 = new TeacherCache(teacher, { dir });
    const pre = { ...b, pixels: b.pixels.map((x) => x * 0.5) };
    const tok = { ...b, ids: Int32Array.from(b.ids) };
    tok.ids[1] = tok.ids[1] === 7 ? 8 : 7;
    for (let i = 0; i < 4; i++) {
      assert.notEqual(c4.itemKey(pre, i), c4.itemKey(b, i));
      assert.equal(c4.itemKey(tok, i) === c4.itemKey(b, i), i !== 0);
    }
    assert.equal(c4.itemKey(repad(b, [0], 9), 0), c4.itemKey(b, 0)); // padding is not part of the key
    run(teacher, student, c4, pre);
    assert.deepEqual([c4.stats.hits, c4.stats.misses], [0, 4]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the memory bound evicts the oldest entries', () => {
  const teacher = tinyModel(3),
    student = tinyModel(5);
  const all = new TeacherCache(teacher);
  run(teacher, student, all, batch(4));
  const total = all.stats.memoryBytes;
  assert.equal(all.stats.entries, 4);
  const cache = new TeacherCache(teacher, { memoryBytes: total / 2 });
  run(teacher, student, cache, batch(4));
  const st = cache.stats;
  assert.ok(st.memoryBytes <= total / 2 && st.entries >= 1 && st.entries < 4, JSON.stringify(st));
  run(teacher, student, cache, batch(4)); // the evicted items are computed again
  assert.ok(cache.stats.misses > 4, JSON.stringify(cache.stats));
});

test('TeacherCache.open shares one cache per teacher and precision through opts.shared', () => {
  const a = tinyModel(3),
    b = tinyModel(4);
  const shared = new Map<string, TeacherCache>();
  const c1 = TeacherCache.open(a, { shared });
  assert.equal(TeacherCache.open(a, { shared }), c1, 'same teacher: the same cache');
  assert.notEqual(TeacherCache.open(a, { shared }, 'bf16'), c1, 'another precision: another cache');
  assert.notEqual(TeacherCache.open(b, { shared }), c1, 'another teacher: another cache');
  assert.equal(shared.size, 3);
  assert.notEqual(TeacherCache.open(a), TeacherCache.open(a), 'without a shared map every open is new');
  run(a, tinyModel(5), c1, batch(4));
  const before = c1.stats.hits;
  run(a, tinyModel(6), TeacherCache.open(a, { shared }), batch(4)); // another student, the same items
  assert.equal(c1.stats.hits, before + 4);
});

test('memory bound defaults: an eighth (≤ 4 GiB) alone, a thirty-second (≤ 512 MiB) beside a disk folder', () => {
  const GiB = 2 ** 30;
  assert.equal(defaultTeacherCacheBytes(false, 24 * GiB), 3 * GiB);
  assert.equal(defaultTeacherCacheBytes(false, 64 * GiB), 4 * GiB);
  assert.equal(defaultTeacherCacheBytes(true, 8 * GiB), 256 * 2 ** 20);
  assert.equal(defaultTeacherCacheBytes(true, 64 * GiB), 512 * 2 ** 20);
  // the flags: DIR picks the small default, an explicit --teacher-cache-memory wins, 0 without DIR = no cache
  assert.equal(parseTeacherCacheFlags({ teacherCache: '/tmp/tc' })!.memoryBytes, defaultTeacherCacheBytes(true));
  assert.equal(parseTeacherCacheFlags({})!.memoryBytes, defaultTeacherCacheBytes(false));
  assert.equal(parseTeacherCacheFlags({ teacherCache: '/tmp/tc', teacherCacheMemory: '2048' })!.memoryBytes, 2 * GiB);
  assert.equal(parseTeacherCacheFlags({ teacherCacheMemory: '0' }), null);
  assert.deepEqual(parseTeacherCacheFlags({ teacherCache: '/tmp/tc', teacherCacheMemory: '0' }), {
    dir: '/tmp/tc',
    memoryBytes: 0,
  });
});
