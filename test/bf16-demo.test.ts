// A run like the demo's (shipped demo teacher; MoPE scoring on the demo's calibration sets, half the heads and FFN
// groups of the vision tower pruned, a short distillation; zero-shot on fashion-mnist and retrieval on
// fashion-scenes for the teacher, the pruned and the distilled model) in bf16 against the same run in fp32: every
// figure the demo prints (zero-shot top-1 and retrieval mean R@1 in %, parameters, GFLOPs) within 1 point.
// Kept small for CI: 32 calibration pairs, 4 distillation steps of 16 pairs at a low learning rate (a few steps at
// the demo's rate swing the figures by several points in either precision), 600 evaluation items per set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKernels } from '../src/engine/native.ts';
import type { Precision } from '../src/engine/precision.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { compress } from '../src/pipeline/compress.ts';
import { DEMO_CALIB, DEMO_EVAL } from '../src/pipeline/demo.ts';
import type { ModelEval } from '../src/pipeline/evaluate.ts';
import { hasShippedTeacher, unpackShippedTeacher } from '../src/pipeline/teacher.ts';

const rt = (p: Precision): Runtime => ({
  kernels: loadKernels(p),
  threads: 2,
  seed: 0,
  log: silentLogger,
  precision: p,
});

test('demo-like run: bf16 lands within 1 point of fp32 on every figure', async (t) => {
  if (!hasShippedTeacher()) return t.skip('assets/demo-teacher is not shipped in this checkout');
  const dir = mkdtempSync(join(tmpdir(), 'bf16-demo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const teacher = join(dir, 'teacher');
  unpackShippedTeacher(teacher);
  const run = async (p: Precision): Promise<[string, ModelEval][]> => {
    const s = await compress(rt(p), {
      model: teacher,
      data: 'builtin:fashion-mix:train',
      // Mixed calibration (retrieval pairs + labelled images), as the demo used before retrieval-only became the
      // default: with retrieval-only Z on 32 pairs, R@1 moves in coarse steps and bf16 rounding alone reorders
      // modules, so the two precisions prune different modules (8.8 points apart on the pruned zero-shot figure
      // when tried). This test checks the numeric path given comparable pruning decisions.
      calib: DEMO_CALIB.pairs,
      calibZeroshot: 'builtin:fashion-mnist:val',
      calibLimit: 32,
      stage: 'finetune',
      tower: 'vision',
      keepHeads: 0.5,
      keepFfn: 0.5,
      criterion: 'mope',
      ffnGroupSize: 32,
      distill: { steps: 4, batch: 16, lr: 5e-5, weightDecay: 0.05, warmup: 1, gradClip: 1 },
      eval: [DEMO_EVAL.zeroshot, DEMO_EVAL.retrieval],
      evalLimit: 600,
      seed: 0,
      out: join(dir, p),
    });
    return [
      ['teacher', s.evals.teacher!],
      ['pruned', s.evals.width!],
      ['distilled', s.evals['width-distilled']!],
    ];
  };
  const f32 = await run('fp32'),
    f16 = await run('bf16');
  for (const [i, [what, a]] of f32.entries()) {
    const b = f16[i]![1];
    assert.equal(b.params, a.params, `${what}: parameters`);
    assert.equal(b.gflops, a.gflops, `${what}: GFLOPs`);
    for (const k of ['zeroshot', 'retrieval'] as const) {
      assert.ok(a[k] !== null && b[k] !== null, `${what}: ${k} measured`);
      const d = Math.abs(100 * (b[k]! - a[k]!));
      if (process.env.MOPE_VERBOSE) process.stderr.write(`${what} ${k}: fp32 ${100 * a[k]!} bf16 ${100 * b[k]!}\n`);
      const msg = `${what}: ${k} fp32 ${(100 * a[k]!).toFixed(2)} %, bf16 ${(100 * b[k]!).toFixed(2)} %`;
      assert.ok(d <= 1 + 1e-9, `${msg} (${d.toFixed(2)} points)`);
    }
  }
});
