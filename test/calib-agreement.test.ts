// Calibration split-half agreement: splitCalibration gives two disjoint halves that cover the set, a set made of two
// identical halves ranks modules identically (Spearman 1 for every kind), a differing one does not, and
// `mope-clip score` reports rank_agreement when the set allows a split (null below the minimum half size).
// Dims: the prune fixtures' tiny model (test/helpers/prune-fixtures.ts) and the tiny checkpoint of helpers/tiny.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { register as registerScore } from '../src/cli/score.ts';
import { splitCalibration } from '../src/prune/calibration.ts';
import type { Calibration } from '../src/prune/mope.ts';
import { enumerateModules } from '../src/prune/modules.ts';
import { canSplit, splitHalfAgreement, spearman } from '../src/prune/rank-agreement.ts';
import { calibration, rt, tinyModel } from './helpers/prune-fixtures.ts';
import { runCommands } from './helpers/cli.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';

test('splitCalibration: two disjoint halves covering the items; class prompts shared', () => {
  const cal = calibration('both', 11, 7);
  const [a, b] = splitCalibration(cal);
  assert.equal(a.retrieval!.n + b.retrieval!.n, 11);
  assert.equal(a.retrieval!.n, 5);
  const per = cal.retrieval!.pixels.length / 11;
  assert.deepEqual([...a.retrieval!.pixels, ...b.retrieval!.pixels], [...cal.retrieval!.pixels]);
  assert.equal(a.retrieval!.pixels.length, 5 * per);
  assert.deepEqual([...a.retrieval!.captions, ...b.retrieval!.captions], cal.retrieval!.captions);
  const labels = (c: Calibration) => Array.from(c.zeroshot!.labels);
  assert.deepEqual([...labels(a), ...labels(b)], labels(cal));
  assert.equal(a.zeroshot!.prompts, cal.zeroshot!.prompts);
  assert.equal(canSplit(cal), false, '5 items per half is below the minimum');
});

test('split-half agreement: identical halves rank alike (ρ = 1), different halves need not', () => {
  const model = tinyModel();
  const base = calibration('retrieval', 16);
  const r = base.retrieval!;
  const twice: Calibration = {
    task: 'retrieval',
    retrieval: {
      pixels: Float32Array.from([...r.pixels, ...r.pixels]),
      n: 32,
      captions: [...r.captions, ...r.captions],
    },
  };
  const mods = enumerateModules(model, { towers: ['vision', 'text'], kinds: ['head', 'ffn'], ffnGroupSize: 4 });
  const same = splitHalfAgreement(rt, model, twice, mods, { ffnGroupSize: 4 });
  assert.deepEqual(Object.keys(same).sort(), ['all', 'text/ffn', 'text/head', 'vision/ffn', 'vision/head']);
  for (const [k, v] of Object.entries(same)) assert.ok(Math.abs(v - 1) < 1e-12, `${k}: ${v}`);
  const other = splitHalfAgreement(rt, model, calibration('retrieval', 32), mods, { ffnGroupSize: 4 });
  assert.ok(other.all! < 1 - 1e-9, `two different halves of random data: ρ ${other.all}`);
  assert.equal(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]), 0.8);
});

test('score prints rank_agreement when the calibration set allows a split', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const modelDir = join(dir, 'model');
  writeTinyCheckpoint(modelDir, { withTokenizer: true, seed: 3 });
  const run = async (limit: string, out: string) => {
    const c = await runCommands(
      [registerScore],
      [
        'score',
        '--model',
        modelDir,
        '--data',
        'builtin:fashion-scenes:val',
        '--limit',
        limit,
        '--task',
        'retrieval',
        '--tower',
        'vision',
        '--granularity',
        'heads',
        '--threads',
        '1',
        '--out',
        join(dir, out),
      ],
    );
    return JSON.parse(c.stdout) as { rank_agreement: Record<string, number> | null };
  };
  const big = await run('32', 'a.json');
  assert.ok(big.rank_agreement !== null && typeof big.rank_agreement['vision/head'] === 'number');
  assert.ok(big.rank_agreement.all! >= -1 && big.rank_agreement.all! <= 1);
  assert.equal((await run('8', 'b.json')).rank_agreement, null);
});
