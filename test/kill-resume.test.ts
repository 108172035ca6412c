// kill -9 and resume through the real CLI (bin/mope-clip.mjs): score, train and compress are each killed with
// SIGKILL once their first checkpoint is on disk, rerun (score/train with --resume, compress as is), and their result
// compared with an uninterrupted run of the same command: same scores, same weights, byte for byte.
// Dims: the tiny geometry of test/helpers/tiny.ts; builtin fashion data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import { BIN } from './helpers/fuzz-run.ts';

const ENV = { ...process.env, MOPE_THREADS: '1' };

function readJson(p: string): unknown {
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return null;
  }
}

/** Runs the CLI to the end; rejects with its stderr on a non-zero exit. */
function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code, signal) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`mope-clip ${args.join(' ')}: exit ${code} ${signal ?? ''}\n${err}`)),
    );
  });
}

/**
 * Runs the CLI and sends SIGKILL as soon as `ready()` holds (polled every 10 ms). Resolves with the signal that
 * ended it: 'SIGKILL' when it was killed mid-run, null when it finished first (the caller fails the test then).
 */
function runAndKill(args: string[], ready: () => boolean): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        p.kill('SIGKILL');
      }
    }, 10);
    p.on('close', (_code, signal) => {
      clearInterval(timer);
      resolve(signal);
    });
  });
}

test('kill -9 score after its first module, --resume: the same scores as one uninterrupted run', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const model = join(dir, 'model');
  writeTinyCheckpoint(model, { withTokenizer: true });
  const args = (out: string) => [
    'score',
    '--model',
    model,
    '--metric',
    'mope',
    '--task',
    'retrieval',
    '--data',
    'builtin:fashion-scenes:val',
    '--limit',
    '24',
    '--tower',
    'both',
    '--granularity',
    'heads,ffn,layers',
    '--ffn-group-size',
    '8',
    '--out',
    out,
  ];
  const straight = join(dir, 'straight.json'),
    killed = join(dir, 'killed.json');
  await run(args(straight));
  const sig = await runAndKill(args(killed), () => {
    const f = readJson(killed) as { modules?: unknown[] } | null;
    return (f?.modules?.length ?? 0) >= 1;
  });
  assert.equal(sig, 'SIGKILL', 'the run was killed before it finished');
  const partial = readJson(killed) as { complete: boolean; modules: unknown[] };
  assert.equal(partial.complete, false);
  await run([...args(killed), '--resume']);
  type F = {
    complete: boolean;
    modules: Array<{ tower: string; kind: string; layer: number; index: number; mope: number }>;
  };
  const a = readJson(straight) as F,
    b = readJson(killed) as F;
  assert.equal(b.complete, true);
  const key = (m: F['modules'][number]) => `${m.tower}/${m.kind}/${m.layer}/${m.index}`;
  const byKey = new Map(a.modules.map((m) => [key(m), m.mope]));
  assert.equal(b.modules.length, a.modules.length);
  for (const m of b.modules) assert.equal(m.mope, byKey.get(key(m)), `score of ${key(m)}`);
});

test('kill -9 train after its first checkpoint, --resume: the same final weights as one uninterrupted run', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const args = (out: string) => [
    'train',
    '--init',
    'tiny',
    '--data',
    'builtin:fashion-scenes:train',
    '--limit',
    '64',
    '--steps',
    '10',
    '--batch',
    '4',
    '--save-every',
    '2',
    '--lr',
    '1e-3',
    '--seed',
    '5',
    '--out',
    out,
  ];
  const straight = join(dir, 'straight'),
    killed = join(dir, 'killed');
  await run(args(straight));
  const sig = await runAndKill(args(killed), () => existsSync(join(killed, 'checkpoint', 'train_state.json')));
  assert.equal(sig, 'SIGKILL', 'the run was killed before it finished');
  assert.ok(!existsSync(join(killed, 'model.safetensors')), 'a killed run has no final model');
  await run([...args(killed), '--resume']);
  const wa = readFileSync(join(straight, 'model.safetensors')),
    wb = readFileSync(join(killed, 'model.safetensors'));
  assert.ok(wa.equals(wb), 'final weights differ from the uninterrupted run');
});

test('kill -9 compress after its first stage, rerun: the same final model as one uninterrupted run', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const model = join(dir, 'model');
  writeTinyCheckpoint(model, { withTokenizer: true });
  const args = (out: string) => [
    'compress',
    '--model',
    model,
    '--data',
    'builtin:fashion-scenes:train',
    '--calib',
    'builtin:fashion-scenes:val',
    '--calib-limit',
    '8',
    '--stage',
    'finetune',
    '--tower',
    'vision',
    '--keep-heads',
    '0.5',
    '--keep-ffn',
    '0.5',
    '--keep-layers',
    '1',
    '--ffn-group-size',
    '16',
    '--steps',
    '2',
    '--batch',
    '4',
    '--warmup',
    '0',
    '--seed',
    '3',
    '--out',
    out,
  ];
  const straight = join(dir, 'straight'),
    killed = join(dir, 'killed');
  await run(args(straight));
  const sig = await runAndKill(args(killed), () => {
    const s = readJson(join(killed, 'stages.json')) as { completed?: unknown[] } | null;
    return (s?.completed?.length ?? 0) >= 1;
  });
  assert.equal(sig, 'SIGKILL', 'the run was killed before it finished');
  assert.ok(!existsSync(join(killed, 'summary.json')), 'a killed run has no summary');
  await run(args(killed));
  const final = (d: string) => readFileSync(join(d, 'distill-final', 'model.safetensors'));
  assert.ok(final(straight).equals(final(killed)), 'final weights differ from the uninterrupted run');
  const s = readJson(join(killed, 'stages.json')) as { completed: Array<{ name: string }> };
  assert.equal(s.completed.at(-1)!.name, 'report');
});
