// The README's main command, `mope-clip demo`, end to end on a tiny budget through the real CLI wiring: the shipped
// teacher is compressed (MoPE and scratch, half width + half depth, one seed, 2 distillation steps), the study
// table is printed and study.json, table.md and report.html are written with one finished run per cell.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { register } from '../src/cli/demo.ts';
import { hasShippedTeacher } from '../src/pipeline/teacher.ts';
import { runCommands } from './helpers/cli.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

test('demo: a tiny study through the CLI prints the table and writes study.json, table.md, report.html', async (t) => {
  if (!hasShippedTeacher()) return t.skip('assets/demo-teacher is not shipped in this checkout');
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const out = join(dir, 'study');
  const c = await runCommands(
    [register],
    [
      'demo',
      '--out',
      out,
      '--cache',
      join(dir, 'cache'),
      '--criteria',
      'mope,scratch',
      '--targets',
      'width50+depth50',
      '--seeds',
      '1',
      '--steps',
      '2',
      '--zeroshot-limit',
      '100',
      '--calib-limit',
      '32',
      '--threads',
      '2',
      '--precision',
      'fp32',
    ],
  );
  assert.match(c.stdout, /width50\+depth50/);
  assert.match(c.stdout, /mope/);
  assert.match(c.stdout, /scratch/);
  for (const f of ['study.json', 'table.md', 'report.html']) assert.ok(existsSync(join(out, f)), f);
  const study = JSON.parse(readFileSync(join(out, 'study.json'), 'utf8')) as { runs: unknown[] };
  assert.equal(study.runs.length, 2);
});
