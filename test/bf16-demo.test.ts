// A demo-like run (shipped demo teacher, half-width MoPE compression of the vision tower, a short distillation,
// zero-shot and retrieval before and after) in bf16 against the same run in fp32: every figure the demo prints
// (teacher, pruned and distilled zero-shot top-1 and retrieval mean R@1, parameters, GFLOPs) within 1 point.
// Kept small for CI: 400 zero-shot images and retrieval scenes, 4 distillation steps of 16 pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKernels } from '../src/engine/native.ts';
import type { Precision } from '../src/engine/precision.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { runDemo } from '../src/pipeline/demo.ts';
import type { ModelEval } from '../src/pipeline/evaluate.ts';
import { hasShippedTeacher } from '../src/pipeline/teacher.ts';

const rt = (p: Precision): Runtime => ({ kernels: loadKernels(p), threads: 2, seed: 0, log: silentLogger, precision: p });

test('demo-like run: bf16 lands within 1 point of fp32 on every figure', async (t) => {
  if (!hasShippedTeacher()) return t.skip('assets/demo-teacher is not shipped in this checkout');
  const dir = mkdtempSync(join(tmpdir(), 'bf16-demo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (p: Precision) => runDemo(rt(p), {
    out: join(dir, p), cacheDir: join(dir, 'cache'), criteria: ['mope'], towers: ['vision'], zeroshotLimit: 400,
    distill: { steps: 4, batch: 16, warmup: 1, lr: 1e-4 },
  });
  const r32 = await run('fp32'), r16 = await run('bf16');
  const figures = (r: typeof r32): [string, ModelEval][] =>
    [['teacher', r.teacher], ...r.rows.flatMap((x): [string, ModelEval][] => [['pruned', x.before], ['distilled', x.after]])];
  const f32 = figures(r32), f16 = figures(r16);
  assert.equal(f16.length, 3);
  for (const [i, [what, a]] of f32.entries()) {
    const b = f16[i]![1];
    assert.equal(b.params, a.params, `${what}: parameters`);
    assert.equal(b.gflops, a.gflops, `${what}: GFLOPs`);
    for (const k of ['zeroshot', 'retrieval'] as const) {
      assert.ok(a[k] !== null && b[k] !== null, `${what}: ${k} measured`);
      const d = Math.abs(100 * (b[k]! - a[k]!));
      if (process.env.MOPE_VERBOSE) process.stderr.write(`${what} ${k}: fp32 ${100 * a[k]!} bf16 ${100 * b[k]!}\n`);
      assert.ok(d <= 1 + 1e-9, `${what}: ${k} fp32 ${(100 * a[k]!).toFixed(2)} %, bf16 ${(100 * b[k]!).toFixed(2)} % (${d.toFixed(2)} points)`);
    }
  }
});
