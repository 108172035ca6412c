// MoPE scorer tests on a tiny random model with synthetic calibration data: fast path = naive path, cost
// accounting, resume after a kill, shard union = full run, merge refusals, random/magnitude runs.
// Dims: see test/helpers/prune-fixtures.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { scoreMope } from '../src/prune/mope.ts';
import { enumerateModules, moduleKey, parseShard, shardModules, type ModuleKind } from '../src/prune/modules.ts';
import { runScore, type ScoreRunOptions } from '../src/prune/score-run.ts';
import { mergeScores, readScoresFile, type ScoresFile } from '../src/prune/scores-file.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';
import { calibration, rt, tinyModel } from './helpers/prune-fixtures.ts';

const model = tinyModel();
const kinds: ModuleKind[] = ['head', 'ffn', 'layer'];

for (const task of ['retrieval', 'zeroshot', 'both'] as const) {
  test(`fast path equals naive path (task ${task}, both towers, heads/ffn/layers)`, () => {
    const cal = calibration(task);
    const mods = enumerateModules(model, { towers: ['vision', 'text'], kinds, ffnGroupSize: 7 });
    const naive = scoreMope(rt, model, cal, mods, { ffnGroupSize: 7, batch: 4, naive: true });
    for (const variants of [1, 3]) {
      const fast = scoreMope(rt, model, cal, mods, { ffnGroupSize: 7, batch: 4, variants });
      assert.equal(fast.modules.length, mods.length);
      assert.ok(Math.abs(fast.base.z - naive.base.z) < 1e-12 && Math.abs(fast.base.loss - naive.base.loss) < 1e-6);
      fast.modules.forEach((m, i) => {
        const n = naive.modules[i];
        assert.equal(moduleKey(m), moduleKey(n));
        assert.ok(Math.abs(m.mope - n.mope) <= 1e-6, `${moduleKey(m)} mope ${m.mope} vs ${n.mope}`);
        assert.ok(
          Math.abs(m.loss_increase - n.loss_increase) <= 1e-6,
          `${moduleKey(m)} loss ${m.loss_increase} vs ${n.loss_increase}`,
        );
      });
      assert.ok(
        fast.cost.layer_forwards < naive.cost.layer_forwards,
        `fast ${fast.cost.layer_forwards} < naive ${naive.cost.layer_forwards}`,
      );
      assert.equal(fast.cost.naive_layer_forwards, naive.cost.layer_forwards);
    }
    // Masking changes something: not every module scores exactly zero loss increase.
    assert.ok(naive.modules.some((m) => Math.abs(m.loss_increase) > 1e-4));
  });
}

test('fast path cost: base pass + per module the layers from its own on', () => {
  const cal = calibration('retrieval');
  const mods = enumerateModules(model, { towers: ['vision'], kinds: ['head', 'layer'], ffnGroupSize: 8 });
  const r = scoreMope(rt, model, cal, mods, { ffnGroupSize: 8 });
  // base: 3 + 3; advancing the state to layer 2: 2; heads of layer l: 3·(3 − l); layer modules: 3 − l − 1.
  const expected = 6 + 2 + 3 * (3 + 2 + 1) + (2 + 1 + 0);
  assert.equal(r.cost.layer_forwards, expected);
  assert.equal(r.cost.naive_layer_forwards, (mods.length + 1) * 6);
});

function baseRun(dir: string, extra: Partial<ScoreRunOptions> = {}): ScoreRunOptions {
  return {
    out: join(dir, 'scores.json'),
    modelPath: 'tiny',
    data: 'synthetic',
    zeroshotData: null,
    limit: null,
    task: 'retrieval',
    metric: 'mope',
    seed: 0,
    towers: ['vision', 'text'],
    kinds,
    ffnGroupSize: 8,
    shard: null,
    resume: false,
    batch: 4,
    ...extra,
  };
}

function byKey(f: ScoresFile) {
  return new Map(f.modules.map((m) => [moduleKey(m), m]));
}

test('resume after a simulated kill does not redo finished modules and gives the same scores', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const cal = calibration('retrieval');
  const full = runScore(rt, model, cal, baseRun(dir, { out: join(dir, 'full.json') }));
  assert.ok(full.complete);
  let written = 0;
  assert.throws(
    () =>
      runScore(
        rt,
        model,
        cal,
        baseRun(dir, {
          afterWrite: () => {
            if (++written === 9) throw new Error('killed');
          },
        }),
      ),
    /killed/,
  );
  const partial = readScoresFile(join(dir, 'scores.json'));
  assert.equal(partial.modules.length, 9);
  assert.equal(partial.complete, false);
  // Without --resume an unfinished file is refused rather than overwritten.
  assert.throws(() => runScore(rt, model, cal, baseRun(dir)), ConfigError);
  const redone: string[] = [];
  const resumed = runScore(
    rt,
    model,
    cal,
    baseRun(dir, { resume: true, afterWrite: (e) => redone.push(moduleKey(e)) }),
  );
  assert.equal(redone.length, full.modules.length - 9);
  const first9 = new Set(partial.modules.map(moduleKey));
  assert.ok(redone.every((k) => !first9.has(k)));
  assert.ok(resumed.complete);
  const a = byKey(full),
    b = byKey(resumed);
  assert.equal(b.size, a.size);
  for (const [k, m] of a) {
    assert.ok(
      Math.abs(m.mope! - b.get(k)!.mope!) <= 1e-9 && Math.abs(m.loss_increase! - b.get(k)!.loss_increase!) <= 1e-9,
      k,
    );
  }
  // The file on disk is valid JSON with the cost of both processes.
  const disk = JSON.parse(readFileSync(join(dir, 'scores.json'), 'utf8')) as ScoresFile;
  assert.ok(disk.cost.layer_forwards > 0 && disk.cost.naive_layer_forwards > disk.cost.layer_forwards);
  // Resuming with another task is refused.
  assert.throws(
    () => runScore(rt, model, calibration('zeroshot'), baseRun(dir, { resume: true, task: 'zeroshot' })),
    ConfigError,
  );
});

test('shards 1..N merged equal the unsharded run; merge refuses mismatched runs', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const cal = calibration('retrieval');
  const full = runScore(rt, model, cal, baseRun(dir, { out: join(dir, 'full.json') }));
  const shards = [1, 2, 3].map((i) =>
    runScore(rt, model, cal, baseRun(dir, { out: join(dir, `s${i}.json`), shard: { index: i, count: 3 } })),
  );
  assert.equal(
    shards.reduce((a, s) => a + s.modules.length, 0),
    full.modules.length,
  );
  const merged = mergeScores(shards.map((file, i) => ({ name: `s${i + 1}.json`, file })));
  assert.ok(merged.complete);
  assert.equal(merged.shard, null);
  assert.deepEqual(merged.modules.map(moduleKey), full.modules.map(moduleKey));
  const a = byKey(full);
  for (const m of merged.modules) assert.ok(Math.abs(m.mope! - a.get(moduleKey(m))!.mope!) <= 1e-9);

  const named = (f: ScoresFile, name: string) => ({ name, file: f });
  const other = (edit: (f: ScoresFile) => void) => {
    const f = structuredClone(shards[1]);
    edit(f);
    return f;
  };
  assert.throws(
    () =>
      mergeScores([
        named(shards[0], 'a'),
        named(
          other((f) => {
            f.data = 'csv:other.csv';
          }),
          'b',
        ),
      ]),
    /data/,
  );
  assert.throws(
    () =>
      mergeScores([
        named(shards[0], 'a'),
        named(
          other((f) => {
            f.task = 'zeroshot';
          }),
          'b',
        ),
      ]),
    /task/,
  );
  assert.throws(
    () =>
      mergeScores([
        named(shards[0], 'a'),
        named(
          other((f) => {
            f.model.fingerprint = 'deadbeef';
          }),
          'b',
        ),
      ]),
    /model/,
  );
  assert.throws(
    () =>
      mergeScores([
        named(shards[0], 'a'),
        named(
          other((f) => {
            f.shard = { index: 1, count: 4 };
          }),
          'b',
        ),
      ]),
    /shards/,
  );
  assert.throws(() => mergeScores([named(shards[0], 'a'), named(shards[0], 'b')]), /both shard 1/);
  const otherModel = runScore(
    rt,
    tinyModel(8),
    cal,
    baseRun(dir, { out: join(dir, 'o2.json'), shard: { index: 2, count: 3 } }),
  );
  assert.throws(() => mergeScores([named(shards[0], 'a'), named(otherModel, 'b')]), ConfigError);
  // A missing shard gives an incomplete merge.
  assert.equal(mergeScores([named(shards[0], 'a'), named(shards[1], 'b')]).complete, false);
});

test('shard specs and module subsets', () => {
  assert.deepEqual(parseShard('2/8'), { index: 2, count: 8 });
  for (const bad of ['3/2', '0/2', '1/0', 'a/b', '1-2', '']) assert.throws(() => parseShard(bad), ConfigError, bad);
  const mods = enumerateModules(model, { towers: ['vision'], kinds, ffnGroupSize: 8 });
  const parts = [1, 2, 3, 4].map((i) => shardModules(mods, { index: i, count: 4 }));
  assert.deepEqual(parts.flat().map(moduleKey).sort(), mods.map(moduleKey).sort());
  assert.deepEqual(shardModules(mods, { index: 2, count: 4 }), shardModules(mods, { index: 2, count: 4 }));
});

test('random and magnitude runs need no data; random values do not depend on the shard', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const opts = { data: null, task: null, metric: 'random' as const, seed: 5 };
  const full = runScore(rt, model, null, baseRun(dir, { ...opts, out: join(dir, 'r.json') }));
  const s2 = runScore(
    rt,
    model,
    null,
    baseRun(dir, { ...opts, out: join(dir, 'r2.json'), shard: { index: 2, count: 2 } }),
  );
  const a = byKey(full);
  for (const m of s2.modules) assert.equal(m.random, a.get(moduleKey(m))!.random);
  assert.ok(
    full.modules.every((m) => m.mope === null && typeof m.random === 'number' && typeof m.magnitude === 'number'),
  );
  const other = runScore(rt, model, null, baseRun(dir, { ...opts, seed: 6, out: join(dir, 'r3.json') }));
  assert.notDeepEqual(
    other.modules.map((m) => m.random),
    full.modules.map((m) => m.random),
  );
  const mag = runScore(rt, model, null, baseRun(dir, { ...opts, metric: 'magnitude', out: join(dir, 'm.json') }));
  assert.equal(readScoresFile(join(dir, 'm.json')).modules.length, mag.modules.length);
});

test('corrupt scores files are refused with a clear error', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const p = join(dir, 'bad.json');
  for (const text of ['{not json', '{"format":"other"}', JSON.stringify({ format: 'mope-clip-scores', version: 1 })]) {
    writeFileSync(p, text);
    assert.throws(
      () => readScoresFile(p),
      (e: Error) => e instanceof ConfigError && /scores file/.test(e.message),
    );
  }
});
