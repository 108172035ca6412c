// `mope-clip study` on a tiny checkpoint with a tiny budget: the grid runs, a study killed after a run resumes without
// redoing finished runs, and its table equals mean ± std recomputed from the runs' own summary.json files; targets
// parse; the report has one line per criterion. Dims: the tiny geometry of test/helpers/tiny.ts (2 layers per tower).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeKernels } from '../src/engine/native.ts';
import type { Runtime } from '../src/engine/runtime.ts';
import { ConfigError } from '../src/errors.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import type { CompressSummary } from '../src/pipeline/compress.ts';
import { parseTarget, runStudy, type StudyFile, type StudyOptions } from '../src/pipeline/study.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';

const kernels = loadNativeKernels();
kernels.setThreads(1);
const logs: string[] = [];
const rt: Runtime = { kernels, threads: 1, seed: 0, log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) } };

test('targets: widthNN and widthNN+depthMM', () => {
  assert.deepEqual(parseTarget('width50'), { name: 'width50', width: 0.5, depth: null });
  assert.deepEqual(parseTarget('width50+depth50'), { name: 'width50+depth50', width: 0.5, depth: 0.5 });
  for (const bad of ['width0', 'depth50', 'width50+depth', 'width101', 'w50']) {
    assert.throws(() => parseTarget(bad), ConfigError, bad);
  }
});

test('study: killed, resumes without redoing finished runs; table = mean ± std of the runs’ JSON', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const teacherDir = join(dir, 'teacher');
  writeTinyCheckpoint(teacherDir, { withTokenizer: true });
  const out = join(dir, 'study');
  const o: StudyOptions = {
    model: teacherDir,
    data: 'builtin:fashion-scenes:train',
    calib: 'builtin:fashion-scenes:val',
    calibLimit: 8,
    stage: 'pretrain',
    tower: 'both',
    criteria: ['mope', 'scratch'],
    targets: [parseTarget('width50'), parseTarget('width50+depth50')],
    seeds: [0, 1],
    ffnGroupSize: 16,
    distill: { steps: 1, batch: 4, lr: 1e-3, weightDecay: 0, warmup: 0, gradClip: 1 },
    eval: ['builtin:fashion-scenes:test', 'builtin:fashion-mnist:test'],
    evalLimit: 16,
    out,
  };
  let finished = 0;
  const kill = () => {
    if (++finished === 3) throw new Error('killed');
  };
  await assert.rejects(runStudy(rt, { ...o, afterRun: kill }), /killed/);
  const partial = JSON.parse(readFileSync(join(out, 'study.json'), 'utf8')) as StudyFile;
  assert.equal(partial.runs.length, 3);
  const firstDir = partial.runs[0]!.dir;
  const mtime = statSync(join(firstDir, 'summary.json')).mtimeMs;
  logs.length = 0;
  // Resumed with a teacher-output cache shared by the runs: later runs of a seed find the teacher's outputs.
  const f = await runStudy(rt, { ...o, teacherCache: { memoryBytes: 1 << 26 } });
  assert.equal(f.runs.length, 8);
  const hits = logs.map((l) => /teacher cache: .*"hits":(\d+)/.exec(l)).filter((m) => m !== null);
  assert.equal(hits.length, 5, 'every distillation of the resumed runs used the cache');
  assert.equal(Number(hits[0]![1]), 0, 'the first run computed its teacher outputs');
  assert.ok(Number(hits[hits.length - 1]![1]) > 0, 'a later run of the same seed reused them');
  assert.equal(logs.filter((l) => /finished earlier, skipped/.test(l)).length, 3);
  assert.equal(statSync(join(firstDir, 'summary.json')).mtimeMs, mtime, 'a finished run is not redone');
  // The mope run of the depth target reused the width scores of the width target (same criterion, seed, width).
  const json = (...p: string[]) => JSON.parse(readFileSync(join(out, 'runs', ...p), 'utf8')) as unknown;
  const widthScores = (target: string) =>
    json(target, 'mope', 'seed-1', 'scores', 'width.json') as { cost: { seconds: number }; modules: unknown[] };
  assert.deepEqual(widthScores('width50+depth50'), widthScores('width50'));

  // The table from the runs' own summary files, computed here independently.
  for (const c of f.table) {
    const sums = c.seeds.map((s) => json(c.target, c.criterion, `seed-${s}`, 'summary.json') as CompressSummary);
    assert.deepEqual(c.seeds, [0, 1]);
    const fin = sums.map((s) => s.evals.final!);
    const pairs = [
      ['zeroshot', fin.map((e) => e.zeroshot!)],
      ['retrieval', fin.map((e) => e.retrieval!)],
    ] as const;
    for (const [k, vals] of pairs) {
      const m = (vals[0] + vals[1]) / 2,
        sd = Math.abs(vals[0] - vals[1]) / Math.SQRT2;
      const ok = Math.abs(c[k].mean! - m) < 1e-12 && Math.abs(c[k].std! - sd) < 1e-12;
      assert.ok(ok, `${c.target}/${c.criterion} ${k}`);
    }
    const pr = sums.map((s) => (s.evals.depth ?? s.evals.width)!.retrieval!);
    assert.ok(Math.abs(c.pruned_retrieval.mean! - (pr[0]! + pr[1]!) / 2) < 1e-12);
    const rec = fin.map((e) => e.retrieval! / f.teacher.retrieval!);
    assert.ok(Math.abs(c.recovery_retrieval.mean! - (rec[0]! + rec[1]!) / 2) < 1e-12);
  }
  assert.equal(f.table.length, 4);
  // Depth target: each tower keeps round(2 · 0.5) = 1 layer.
  const deep = loadCheckpoint(join(out, 'runs', 'width50+depth50', 'scratch', 'seed-0', 'distill-final'));
  assert.deepEqual([deep.config.vision.heads, deep.config.text.heads], [[2], [2]]);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.equal((html.match(/<polyline class="series" data-series="mope"/g) ?? []).length, 4, 'one mope line per chart');
  // --collect: gathers the finished runs, runs nothing (seed 2 is not started).
  const c = await runStudy(rt, { ...o, seeds: [0, 1, 2], collectOnly: true });
  assert.equal(c.runs.length, 8);
  assert.deepEqual(c.table, f.table);
  assert.ok(!existsSync(join(out, 'runs', 'width50', 'mope', 'seed-2')));
  await assert.rejects(
    runStudy(rt, { ...o, calibLimit: 9 }),
    (e: unknown) => e instanceof ConfigError && /other settings/.test((e as Error).message),
  );
});
