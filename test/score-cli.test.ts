// End-to-end tests of `mope-clip score`, `score merge` and `prune` on a tiny checkpoint with the builtin
// fashion data sets (in process, commander program built from the two command files).
// Dims: tiny geometry of test/helpers/tiny.ts (text L 2 × 4 heads, vision L 2 × 4 heads, F 64 / 96).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { countParameters, loadCheckpoint } from '../src/io/checkpoint.ts';
import { register as registerScore } from '../src/cli/score.ts';
import { register as registerPrune } from '../src/cli/prune.ts';
import type { ScoresFile } from '../src/prune/scores-file.ts';
import { moduleKey } from '../src/prune/modules.ts';
import { runCommands } from './helpers/cli.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';

async function cli(args: string[]): Promise<string> {
  return (await runCommands([registerScore, registerPrune], args)).stdout;
}

const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as ScoresFile;

test('score → shards + merge → prune, end to end', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const modelDir = join(dir, 'model');
  writeTinyCheckpoint(modelDir, { withTokenizer: true, seed: 3 });
  const common = [
    '--model',
    modelDir,
    '--data',
    'builtin:fashion-scenes:val',
    '--limit',
    '6',
    '--task',
    'retrieval',
    '--tower',
    'both',
    '--granularity',
    'heads,ffn,layers',
    '--ffn-group-size',
    '32',
    '--batch',
    '4',
    '--threads',
    '1',
  ];
  const full = join(dir, 'full.json');
  const summary = JSON.parse(await cli(['score', ...common, '--out', full]));
  assert.equal(summary.complete, true);
  const f = read(full);
  // vision: 2 layers × (4 heads + 3 groups + 1), text: 2 × (4 + 2 + 1)
  assert.equal(f.modules.length, 2 * 8 + 2 * 7);
  assert.equal(f.data, 'builtin:fashion-scenes:val');
  assert.ok(f.base !== null && f.cost.layer_forwards < f.cost.naive_layer_forwards);
  assert.ok(f.modules.every((m) => typeof m.mope === 'number' && typeof m.magnitude === 'number'));

  const naivePath = join(dir, 'naive.json');
  await cli(['score', ...common, '--path', 'naive', '--out', naivePath]);
  const nv = new Map(read(naivePath).modules.map((e) => [moduleKey(e), e]));
  for (const e of f.modules) {
    const n = nv.get(moduleKey(e))!;
    assert.ok(
      Math.abs(e.mope! - n.mope!) <= 1e-6 && Math.abs(e.loss_increase! - n.loss_increase!) <= 1e-6,
      moduleKey(e),
    );
  }
  await assert.rejects(
    cli(['score', ...common, '--path', 'quick', '--out', join(dir, 'bad.json')]),
    /--path expects fast or naive/,
  );

  const s1 = join(dir, 's1.json'),
    s2 = join(dir, 's2.json'),
    merged = join(dir, 'merged.json');
  await cli(['score', ...common, '--shard', '1/2', '--out', s1]);
  await cli(['score', ...common, '--shard', '2/2', '--out', s2]);
  await cli(['score', 'merge', s1, s2, '--out', merged]);
  const m = read(merged);
  assert.equal(m.complete, true);
  assert.deepEqual(m.modules.map(moduleKey), f.modules.map(moduleKey));
  m.modules.forEach((e, i) =>
    assert.ok(
      Math.abs(e.mope! - f.modules[i].mope!) < 1e-9 && Math.abs(e.loss_increase! - f.modules[i].loss_increase!) < 1e-6,
    ),
  );

  // Shards of another task are refused and nothing is written.
  const zs = join(dir, 'zs.json');
  await cli([
    'score',
    '--model',
    modelDir,
    '--data',
    'builtin:fashion-mnist:test',
    '--limit',
    '6',
    '--task',
    'zeroshot',
    '--tower',
    'both',
    '--granularity',
    'heads,ffn,layers',
    '--ffn-group-size',
    '32',
    '--shard',
    '2/2',
    '--threads',
    '1',
    '--out',
    zs,
  ]);
  const bad = join(dir, 'bad.json');
  await assert.rejects(
    cli(['score', 'merge', s1, zs, '--out', bad]),
    (e: Error) => e instanceof ConfigError && /task/.test(e.message),
  );
  assert.equal(existsSync(bad), false);

  // prune
  const out = join(dir, 'pruned');
  const res = JSON.parse(
    await cli([
      'prune',
      '--model',
      modelDir,
      '--scores',
      merged,
      '--tower',
      'both',
      '--keep-heads',
      '0.5',
      '--keep-ffn',
      '0.5',
      '--keep-layers',
      '1',
      '--out',
      out,
    ]),
  );
  assert.ok(res.params_after < res.params_before);
  const pruned = loadCheckpoint(out);
  assert.equal(countParameters(pruned), res.params_after);
  assert.deepEqual(pruned.config.vision.heads, [2]);
  assert.deepEqual(pruned.config.text.heads, [2]);
  assert.ok(
    existsSync(join(out, 'prune_report.json')) &&
      existsSync(join(out, 'vocab.json')) &&
      existsSync(join(out, 'preprocessor_config.json')),
  );

  // Bad input: clear error, nothing written.
  const nothing = join(dir, 'nothing');
  await assert.rejects(
    cli([
      'prune',
      '--model',
      modelDir,
      '--scores',
      merged,
      '--tower',
      'vision',
      '--keep-heads',
      '1.5',
      '--out',
      nothing,
    ]),
    ConfigError,
  );
  await assert.rejects(
    cli([
      'prune',
      '--model',
      modelDir,
      '--scores',
      merged,
      '--tower',
      'vision',
      '--keep-heads',
      '0.5',
      '--min-heads',
      '0',
      '--out',
      nothing,
    ]),
    ConfigError,
  );
  await assert.rejects(
    cli(['prune', '--model', out, '--scores', merged, '--tower', 'vision', '--keep-heads', '0.5', '--out', nothing]),
    /geometry/,
  );
  const corrupt = join(dir, 'corrupt.json');
  writeFileSync(corrupt, '{"format": "mope-clip-scores", "version": 1, "modules": [');
  await assert.rejects(
    cli([
      'prune',
      '--model',
      modelDir,
      '--scores',
      corrupt,
      '--tower',
      'vision',
      '--keep-heads',
      '0.5',
      '--out',
      nothing,
    ]),
    ConfigError,
  );
  await assert.rejects(cli(['score', ...common, '--shard', '3/2', '--out', join(dir, 'x.json')]), /--shard/);
  assert.equal(existsSync(nothing), false);
  assert.equal(existsSync(join(dir, 'x.json')), false);
});

test('score --resume continues an interrupted file; baselines need no data', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const modelDir = join(dir, 'model');
  writeTinyCheckpoint(modelDir, { withTokenizer: true, seed: 4 });
  const out = join(dir, 'mag.json');
  await cli([
    'score',
    '--model',
    modelDir,
    '--metric',
    'magnitude',
    '--tower',
    'vision',
    '--granularity',
    'heads',
    '--out',
    out,
  ]);
  const f = read(out);
  assert.equal(f.modules.length, 8);
  // Simulate a kill: keep 3 modules, mark unfinished; --resume completes without touching them.
  const cut = { ...f, modules: f.modules.slice(0, 3), complete: false };
  cut.modules[0].magnitude = 12345; // a redone module would overwrite this
  writeFileSync(out, JSON.stringify(cut));
  await assert.rejects(
    cli([
      'score',
      '--model',
      modelDir,
      '--metric',
      'magnitude',
      '--tower',
      'vision',
      '--granularity',
      'heads',
      '--out',
      out,
    ]),
    /--resume/,
  );
  await cli([
    'score',
    '--model',
    modelDir,
    '--metric',
    'magnitude',
    '--tower',
    'vision',
    '--granularity',
    'heads',
    '--out',
    out,
    '--resume',
  ]);
  const g = read(out);
  assert.equal(g.modules.length, 8);
  assert.equal(g.complete, true);
  assert.equal(g.modules[0].magnitude, 12345);
});
