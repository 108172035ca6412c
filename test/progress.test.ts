// Progress output: a redrawn bar on a TTY, timed lines in a log (stderr a file or pipe), one bar per scoring run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtRate, Progress, progressCallback, progressLineSeconds } from '../src/ui/progress.ts';

function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = {
    isTTY,
    write(s: string) {
      out += s;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('progressLineSeconds: MOPE_PROGRESS_SECONDS, default 60, bad values fall back', () => {
  assert.equal(progressLineSeconds({}), 60);
  assert.equal(progressLineSeconds({ MOPE_PROGRESS_SECONDS: '5' }), 5);
  assert.equal(progressLineSeconds({ MOPE_PROGRESS_SECONDS: '0' }), 0);
  assert.equal(progressLineSeconds({ MOPE_PROGRESS_SECONDS: 'x' }), 60);
  assert.equal(progressLineSeconds({ MOPE_PROGRESS_SECONDS: '-1' }), 60);
});

test('not a TTY: whole lines at the interval, none before it, a last one at finish', async () => {
  const s = sink(false);
  const p = new Progress(10, 'score', s.stream, { lineSeconds: 0.05 });
  p.tick(2);
  assert.equal(s.text(), '', 'nothing before the first interval');
  await sleep(70);
  p.tick(3);
  p.tick(1); // within the interval: no second line
  const lines = s.text().split('\n').filter(Boolean);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^score \[#+-+\] 5\/10 [\d.]+\/s ETA \S+$/);
  assert.ok(!s.text().includes('\r') && !s.text().includes('\x1b'), 'no terminal control characters in a log');
  p.finish();
  const all = s.text().split('\n').filter(Boolean);
  assert.equal(all.length, 2);
  assert.match(all[1]!, / 6\/10 /);
});

test('not a TTY with lineSeconds 0: silent; a short job prints nothing', async () => {
  const quiet = sink(false);
  const p = new Progress(3, 'x', quiet.stream, { lineSeconds: 0, enabled: true });
  p.tick(3);
  p.finish();
  assert.equal(quiet.text(), '');
  const short = sink(false);
  const q = new Progress(3, 'x', short.stream, { lineSeconds: 60 });
  q.tick(3);
  q.finish();
  assert.equal(short.text(), '');
});

test('TTY: redrawn in place with \\r after the delay', () => {
  const s = sink(true);
  const p = new Progress(4, 'embed', s.stream, { delayMs: 0 });
  p.tick(4);
  p.finish();
  const out = s.text();
  assert.ok(out.startsWith('\rembed [####################] 4/4 ') && out.endsWith('\x1b[K\n'), JSON.stringify(out));
  assert.equal(out.split('\n').length, 2, 'one line, ended once');
});

test('resumed work: items done before the bar started count in the total, not in the rate', async () => {
  const p = new Progress(100, 'r', sink(false).stream, { done: 90, lineSeconds: 0 });
  await sleep(20);
  p.update(91);
  const m = /91\/100 ([\d.]+)\/(s|min|h) /.exec(p.line());
  assert.ok(m, p.line());
  const perS = Number(m[1]) / { s: 1, min: 60, h: 3600 }[m[2] as 's' | 'min' | 'h'];
  // one item in ≥ 20 ms is at most 50/s; had the 90 earlier items been counted it would be thousands
  assert.ok(perS <= 50, p.line());
});

test('progressCallback: one bar per run, finished when done reaches total', async () => {
  const s = sink(false);
  const cb = progressCallback('score', s.stream, { lineSeconds: 0.01 });
  cb(0, 3);
  await sleep(20);
  cb(1, 3);
  cb(3, 3);
  cb(0, 2); // the next run (a depth step) starts a new bar
  await sleep(20);
  cb(2, 2);
  const lines = s.text().split('\n').filter(Boolean);
  assert.deepEqual(
    lines.map((l) => / (\d+\/\d+) /.exec(l)![1]),
    ['1/3', '3/3', '2/2'],
    s.text(),
  );
});

test('fmtRate: per second, then per minute and per hour for slow work', () => {
  assert.equal(fmtRate(12.34), '12.3/s');
  assert.equal(fmtRate(0.1), '0.1/s');
  assert.equal(fmtRate(0.05), '3.0/min');
  assert.equal(fmtRate(0.0005), '1.8/h');
  assert.equal(fmtRate(0), '0.0/s');
});
