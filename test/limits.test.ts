// Limits and refusals of bad input (docs/limits.md): numeric flag ranges, the parameter and batch-memory budgets,
// non-finite weights and outputs, output paths (inside an input, wrong kind), images from devices, FIFOs and
// oversized SVGs, and the exit codes of src/cli/main.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBatch, parseNonNegativeInt, parsePositiveInt, specPath } from '../src/cli/common.ts';
import { main } from '../src/cli/main.ts';
import { parseThreads, resolveThreads } from '../src/engine/runtime.ts';
import { CheckpointError, ConfigError, DataError, OutputError } from '../src/errors.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { assertFiniteOutput, findNonFiniteJson, firstNonFinite, NonFiniteOutputError } from '../src/io/finite.ts';
import { decodeImage } from '../src/io/image.ts';
import { checkOutputDir, checkOutputFile } from '../src/io/out-path.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { batchActivationBytes, checkBatchMemory, MAX_PARAMS, parameterCount } from '../src/model/config.ts';
import { configFromGeometry, GEOMETRIES } from '../src/model/init.ts';
import { countConfigParameters } from '../src/io/checkpoint.ts';
import { makeTempDir, removeDir, writeTinyCheckpoint } from './helpers/tiny.ts';
import { captureIO } from './helpers/cli.ts';

/** Runs main() with its output captured through the CliIO it is given. */
async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const io = captureIO();
  try {
    const code = await main(args, io);
    return { code, out: io.stdout, err: io.stderr };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

test('threads: --threads and MOPE_THREADS in [1, 1024]; bad values are errors naming the flag or variable', () => {
  assert.equal(parseThreads('8', '--threads'), 8);
  for (const v of ['0', '1025', '99999999999', 'abc', '1.5', '', '1e308']) {
    assert.throws(
      () => parseThreads(v, '--threads'),
      (e: unknown) =>
        e instanceof ConfigError && /--threads expects an integer in \[1, 1024\]/.test((e as Error).message),
    );
  }
  const saved = process.env.MOPE_THREADS;
  try {
    process.env.MOPE_THREADS = 'abc';
    assert.throws(() => resolveThreads(), /MOPE_THREADS expects an integer in \[1, 1024\].*"abc"/);
    process.env.MOPE_THREADS = '100000';
    assert.throws(() => resolveThreads(), /MOPE_THREADS .*"100000"/);
    assert.equal(resolveThreads('3'), 3, 'the flag wins over the variable');
    process.env.MOPE_THREADS = '2';
    assert.equal(resolveThreads(), 2);
  } finally {
    if (saved === undefined) delete process.env.MOPE_THREADS;
    else process.env.MOPE_THREADS = saved;
  }
});

test('integer flags: bounded to 2^31-1 by default, to a flag-specific maximum when given', () => {
  assert.equal(parsePositiveInt('12', '--steps'), 12);
  assert.throws(
    () => parsePositiveInt('1e308', '--iters'),
    /--iters expects an integer in \[1, 2147483647\], found "1e308"/,
  );
  assert.throws(() => parsePositiveInt('65', '--workers', 64), /--workers expects an integer in \[1, 64\]/);
  assert.throws(() => parsePositiveInt('', '--steps'), /positive integer/);
  assert.throws(() => parseNonNegativeInt('-1', '--seed'), /non-negative integer/);
  assert.equal(parseNonNegativeInt('0', '--seed'), 0);
  assert.throws(() => parseBatch('99999999999'), /--batch expects an integer in \[1, 65536\]/);
  assert.equal(specPath('coco:/a/b:c.json:test+val'), '/a/b:c.json');
  assert.equal(specPath('csv:/x.csv'), '/x.csv');
  assert.equal(specPath('builtin:fashion-mnist'), undefined);
});

test('budgets: parameter count from shapes equals the loader count; absurd geometries and batches refused before allocation', () => {
  const c = configFromGeometry('vit-b-32');
  assert.equal(parameterCount(c), countConfigParameters(c));
  assert.throws(
    () => configFromGeometry({ ...GEOMETRIES.tiny, text: { ...GEOMETRIES.tiny.text, layers: 2 ** 31 } }),
    /text.layers must be an integer in \[0, 4096\]/,
  );
  assert.throws(
    () => configFromGeometry({ ...GEOMETRIES.tiny, text: { ...GEOMETRIES.tiny.text, hidden: 65536, heads: 1 } }),
    (e: unknown) => e instanceof ConfigError && /more than the limit/.test((e as Error).message),
  );
  assert.ok(parameterCount(configFromGeometry('vit-l-14')) < MAX_PARAMS);
  // batch memory: linear in the batch; training counts every layer
  assert.equal(batchActivationBytes(c, 64), 64 * batchActivationBytes(c, 1));
  assert.ok(batchActivationBytes(c, 1, true) > 10 * batchActivationBytes(c, 1));
  checkBatchMemory(c, 256);
  assert.throws(
    () => checkBatchMemory(c, 60000),
    /--batch 60000: one batch would need about .* GiB .*use --batch \d+ or less/,
  );
});

test('non-finite weights are refused at load naming the tensor; non-finite outputs are refused naming the field', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  writeTinyCheckpoint(dir, { withTokenizer: false });
  const file = join(dir, 'model.safetensors');
  const st = readSafetensors(file);
  const name = [...st.tensors.keys()].find((k) => k.endsWith('layer_norm1.weight'))!;
  st.tensors.get(name)!.data[3] = Infinity;
  writeSafetensors(file, new Map([...st.tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data }])));
  assert.throws(
    () => loadCheckpoint(dir),
    (e: unknown) =>
      e instanceof CheckpointError && (e as Error).message.includes(`tensor '${name}' holds Infinity at element 3`),
  );
  assert.equal(firstNonFinite(Float32Array.of(1, 2, NaN)), 2);
  assert.equal(firstNonFinite([1, -Infinity]), 1);
  assert.equal(firstNonFinite(Float32Array.of(0, -3.4e38)), -1);
  assert.equal(findNonFiniteJson({ a: [1, 2], b: { c: [[0, NaN]] } }), 'b.c[0][1]');
  assert.equal(findNonFiniteJson({ a: null, b: 'NaN', c: [1e308] }), null);
  assert.throws(
    () => assertFiniteOutput({ text_embeds: [[1, Infinity]] }, 'out.json'),
    (e: unknown) =>
      e instanceof NonFiniteOutputError &&
      /out\.json: 'text_embeds\[0\]\[1\]' is not a finite number; nothing was written/.test((e as Error).message),
  );
});

test('output paths: not an input, not inside one, and of the right kind; temp files beside the target', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const model = join(dir, 'model');
  mkdirSync(model);
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const ins = [{ flag: '--model', path: model }];
  assert.throws(
    () => checkOutputDir(model, '--out', ins),
    (e: unknown) => e instanceof OutputError && /--out .*model is the input --model/.test((e as Error).message),
  );
  assert.throws(() => checkOutputDir(join(model, 'sub', '..', 'x'), '--out', ins), /lies inside the input --model/);
  assert.throws(() => checkOutputDir(file, '--out', ins), /is an existing file; expected a folder/);
  assert.throws(() => checkOutputDir(join(file, 'sub'), '--out', ins), /is an existing file, not a folder/);
  assert.throws(() => checkOutputFile(dir, '--out'), /is an existing folder; expected a file name/);
  writeFileSync(join(model, 'config.json'), '{}');
  assert.throws(() => checkOutputFile(join(model, 'config.json'), '--out', ins), /lies inside the input --model/);
  assert.throws(
    () => checkOutputFile(file, '--out', [{ flag: '--texts-file', path: file }]),
    /is the input --texts-file/,
  );
  checkOutputFile(join(model, 'scores.json'), '--out', ins); // a file beside the model replaces nothing it reads
  writeFileSync(join(model, 'scores.json'), '{}');
  checkOutputFile(join(model, 'scores.json'), '--out', ins); // also when it exists (score --resume)
  assert.throws(() => checkOutputFile(join(model, 'model.safetensors'), '--out', ins), /lies inside the input --model/);
  assert.throws(() => checkOutputFile('/dev/null', '--out'), /not a regular file/);
  checkOutputDir(join(dir, 'new'), '--out', ins);
  checkOutputFile(join(dir, 'new.json'), '--out', ins);
  // the atomic writer: a folder target and a file in the way are OutputErrors; the temp file lies beside the target
  assert.throws(
    () => writeFileAtomic(model, 'x'),
    (e: unknown) => e instanceof OutputError && /existing folder/.test((e as Error).message),
  );
  assert.throws(
    () => writeFileAtomic(join(file, 'x.json'), 'x'),
    (e: unknown) => e instanceof OutputError && /a file .* is in the way/.test((e as Error).message),
  );
  writeFileAtomic(join(model, 'ok.json'), '{}');
  assert.deepEqual(readdirSync(model).sort(), ['config.json', 'ok.json', 'scores.json'], 'no temp file left behind');
});

test('images: devices, FIFOs and folders refused without reading; an SVG over the pixel budget refused before decoding', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const fifo = join(dir, 'pipe.png');
  spawnSync('mkfifo', [fifo]);
  const svg = join(dir, 'big.svg');
  writeFileSync(
    svg,
    '<svg xmlns="http://www.w3.org/2000/svg" width="16000" height="16000"><rect width="16000" height="16000"/></svg>',
  );
  for (const [p, why] of [
    ['/dev/zero', /character device/],
    [fifo, /FIFO/],
    [dir, /directory/],
    [svg, /pixel budget/],
    [join(dir, 'none.png'), /file not found/],
  ] as const) {
    const t0 = Date.now();
    await assert.rejects(
      decodeImage(p),
      (e: unknown) =>
        e instanceof DataError &&
        (e as Error).message.startsWith(`cannot decode image ${p}: `) &&
        why.test((e as Error).message),
    );
    assert.ok(Date.now() - t0 < 10_000, `${p} refused quickly`);
  }
});

test('exit codes: 2 for usage errors (no inputs, unknown flag), 1 for bad values and files, never 3', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  writeTinyCheckpoint(dir, { withTokenizer: true });
  const none = await cli(['embed', '--model', dir]);
  assert.equal(none.code, 2);
  assert.match(none.err, /nothing to embed; give at least one --text, --texts-file or --image/);
  assert.equal((await cli(['embed', '--model', dir, '--text', 'x', '--bogus'])).code, 2);
  const env = await cli(['embed', '--model', dir, '--text', 'x'], { MOPE_THREADS: 'abc' });
  assert.equal(env.code, 1);
  assert.match(env.err, /^mope-clip: MOPE_THREADS expects an integer/);
  const bench = await cli(['bench', '--geometry', 'tiny', '--iters', '1', '--batch', '99999999999']);
  assert.equal(bench.code, 1);
  assert.match(bench.err, /--batch expects an integer in \[1, 65536\]/);
  const out = await cli(['embed', '--model', dir, '--text', 'x', '--out', dir]);
  assert.equal(out.code, 1);
  assert.match(out.err, /is an existing folder; expected a file name/);
});
