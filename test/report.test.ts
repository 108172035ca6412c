// Tests of `mope-clip report`: real score runs (MoPE, magnitude, random) on the tiny golden MoPE checkpoint, one
// heatmap cell per head carrying its layer / head / score, bars per FFN group, well-formed XHTML and SVG, the criteria
// comparison, standalone SVG files, and bad input (missing / corrupt scores file: clear error, nothing written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/errors.ts';
import { loadCheckpoint } from '../src/io/checkpoint.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { register as registerReport } from '../src/cli/report.ts';
import { runScore, type ScoreRunOptions } from '../src/prune/score-run.ts';
import type { Metric, ScoresFile } from '../src/prune/scores-file.ts';
import { averageRanks, spearman } from '../src/report/compare.ts';
import { buildScoresReport } from '../src/report/scores-report.ts';
import { fmt } from '../src/report/svg.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { runCommands } from './helpers/cli.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

const rt: Runtime = { kernels: loadNativeKernels(), threads: 1, seed: 0, log: silentLogger };
const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden', 'mope');
const model = loadCheckpoint(join(GOLDEN, 'checkpoint'));
const pixels = readSafetensors(join(GOLDEN, 'pixels.safetensors')).tensors.get('pixel_values')!.data;
const captions = (JSON.parse(readFileSync(join(GOLDEN, 'calibration.json'), 'utf8')) as { captions: number[][] })
  .captions;
const cal = { task: 'retrieval' as const, retrieval: { pixels, n: captions.length, captions } };

function score(dir: string, metric: Metric, extra: Partial<ScoreRunOptions> = {}): ScoresFile {
  return runScore(rt, model, metric === 'mope' ? cal : null, {
    out: join(dir, `${metric}.json`),
    modelPath: 'test/golden/mope/<checkpoint & co>',
    data: 'golden:mope "calibration"',
    zeroshotData: null,
    limit: null,
    task: 'retrieval',
    metric,
    seed: 3,
    towers: ['vision', 'text'],
    kinds: ['head', 'ffn', 'layer'],
    ffnGroupSize: 24,
    shard: null,
    resume: false,
    ...extra,
  });
}

/** Well-formedness check (XML rules): every tag closed in order, attributes quoted and unique, & only as an entity. */
function assertWellFormed(doc: string, what: string): number {
  const body = doc.replace(/^<\?xml[^>]*\?>\s*/, '').replace(/^<!DOCTYPE html>\s*/, '');
  const stack: string[] = [];
  let elements = 0;
  for (const m of body.matchAll(/&[^;\s]*;?/g)) {
    assert.match(
      m[0],
      /^&(amp|lt|gt|quot|#\d+);$/,
      `${what}: bare & at ${m.index}: ${body.slice(m.index!, m.index! + 20)}`,
    );
  }
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  for (let i = body.indexOf('<'); i >= 0; i = body.indexOf('<', i + 1)) {
    tag.lastIndex = i;
    const m = tag.exec(body);
    assert.ok(m, `${what}: malformed tag at ${i}: ${body.slice(i, i + 60)}`);
    const [, close, name, attrs, self] = m;
    const names = [...attrs.matchAll(/([\w:.-]+)="/g)].map((a) => a[1]);
    assert.equal(new Set(names).size, names.length, `${what}: repeated attribute in <${name}>`);
    if (close) assert.equal(stack.pop(), name, `${what}: </${name}> closes the wrong element at ${i}`);
    else if (!self) stack.push(name);
    if (!close) elements++;
  }
  assert.deepEqual(stack, [], `${what}: unclosed elements`);
  return elements;
}

interface Cell {
  attrs: Record<string, string>;
  title: string;
}

/** The <rect class="cell|bar" …><title>…</title></rect> elements of an SVG. */
function cellsOf(svg: string, cls: 'cell' | 'bar'): Cell[] {
  const out: Cell[] = [];
  for (const m of svg.matchAll(new RegExp(`<rect class="${cls}"([^>]*)><title>([^<]*)</title></rect>`, 'g'))) {
    out.push({
      attrs: Object.fromEntries([...m[1].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])),
      title: m[2],
    });
  }
  return out;
}

function figure(report: { figures: Array<{ name: string; svg: string }> }, name: string): string {
  const f = report.figures.find((x) => x.name === name);
  assert.ok(f, `figure ${name} missing; have ${report.figures.map((x) => x.name).join(', ')}`);
  return f.svg;
}

async function cli(args: string[]): Promise<string> {
  return (await runCommands([registerReport], args)).stdout;
}

test('one heatmap cell per head with its layer, head and MoPE; FFN and layer bars; well-formed XHTML', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = score(dir, 'mope');
  const report = buildScoresReport([{ name: join(dir, 'mope.json'), file }]);
  assertWellFormed(report.html, 'report.html');
  for (const tower of ['vision', 'text'] as const) {
    const svg = figure(report, `mope-${tower}-heads`);
    assert.ok(report.html.includes(svg), 'the figure is inline in the HTML');
    assertWellFormed(svg, `${tower} heads svg`);
    const heads = file.modules.filter((m) => m.tower === tower && m.kind === 'head');
    const cells = cellsOf(svg, 'cell');
    assert.equal(cells.length, heads.length, 'one cell per head');
    assert.equal(
      heads.length,
      model.config[tower].heads.reduce((a, b) => a + b, 0),
    );
    for (const h of heads) {
      const c = cells.filter(
        (x) => x.attrs['data-layer'] === String(h.layer) && x.attrs['data-head'] === String(h.index),
      );
      assert.equal(c.length, 1, `${tower} layer ${h.layer} head ${h.index}: one cell`);
      assert.equal(Number(c[0].attrs['data-value']), h.mope, 'data-value = MoPE exactly');
      assert.equal(Number(c[0].attrs['data-loss-increase']), h.loss_increase);
      assert.equal(c[0].attrs['data-tower'], tower);
      assert.ok(c[0].title.includes(`layer ${h.layer} head ${h.index}: MoPE (ΔZ) ${fmt(h.mope)}`), c[0].title);
    }
    // Cell geometry: row = layer, column = head.
    const x = (c: Cell) => Number(c.attrs.x),
      y = (c: Cell) => Number(c.attrs.y);
    const at = (l: number, h: number) =>
      cells.find((c) => c.attrs['data-layer'] === String(l) && c.attrs['data-head'] === String(h))!;
    assert.ok(x(at(0, 1)) > x(at(0, 0)) && y(at(0, 1)) === y(at(0, 0)) && y(at(1, 0)) > y(at(0, 0)));
    const bars = cellsOf(figure(report, `mope-${tower}-ffn`), 'bar');
    const groups = file.modules.filter((m) => m.tower === tower && m.kind === 'ffn');
    assert.equal(bars.length, groups.length, 'one bar per FFN group');
    for (const g of groups) {
      const b = bars.find(
        (x) => x.attrs['data-layer'] === String(g.layer) && x.attrs['data-index'] === String(g.index),
      );
      assert.ok(b && Number(b.attrs['data-value']) === g.mope);
    }
    assert.equal(cellsOf(figure(report, `mope-${tower}-layers`), 'bar').length, model.config[tower].heads.length);
    assert.match(figure(report, `mope-${tower}-sorted`), /<polyline class="series" data-series="heads \(12\)"/);
  }
  // Summary: model, data, task, base Z / loss, cost; user text is escaped.
  assert.ok(report.html.includes('test/golden/mope/&lt;checkpoint &amp; co&gt;'));
  assert.ok(report.html.includes('golden:mope &quot;calibration&quot;'));
  assert.ok(report.html.includes(`<td>retrieval</td><td>${fmt(file.base!.z)}</td><td>${fmt(file.base!.loss)}</td>`));
  assert.ok(
    report.html.includes(`${file.cost.layer_forwards} layer-forwards (naive ${file.cost.naive_layer_forwards}`),
  );
});

test('several criteria files: comparison section with rank agreement and side-by-side head maps', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const files = (['mope', 'magnitude', 'random'] as const).map((m) => ({ name: `${m}.json`, file: score(dir, m) }));
  const report = buildScoresReport(files);
  assertWellFormed(report.html, 'report.html');
  assert.ok(report.html.includes('<h2 id="comparison">Criteria compared</h2>'));
  for (const c of ['mope', 'loss_increase', 'magnitude', 'random']) {
    assert.ok(
      report.figures.some((f) => f.name === `compare-vision-heads-${c}`),
      `side-by-side map of ${c}`,
    );
  }
  // The agreement matrix cell (mope, random) holds Spearman ρ of the two score vectors.
  const keys = files[0].file.modules.filter((m) => m.tower === 'text' && m.kind === 'head');
  const rnd = new Map(files[2].file.modules.map((m) => [`${m.tower}/${m.kind}/${m.layer}/${m.index}`, m.random!]));
  const rho = spearman(
    keys.map((m) => m.mope!),
    keys.map((m) => rnd.get(`${m.tower}/${m.kind}/${m.layer}/${m.index}`)!),
  );
  const cell = cellsOf(figure(report, 'compare-text-head-agreement'), 'cell').find(
    (c) => c.attrs['data-a'] === 'mope' && c.attrs['data-b'] === 'random',
  );
  assert.ok(cell && Math.abs(Number(cell.attrs['data-rho']) - rho) < 1e-12);
  assert.equal(cellsOf(figure(report, 'compare-text-head-agreement'), 'cell').length, 16, '4 criteria × 4');
  assert.match(figure(report, 'compare-vision-ffn-cumulative'), /data-series="random"/);
  // Only one criterion (no magnitude carried along): no comparison.
  const lone = structuredClone(files[2].file);
  lone.modules.forEach((m) => delete m.magnitude);
  assert.ok(!buildScoresReport([{ name: 'random.json', file: lone }]).html.includes('Criteria compared'));
  // A file of another model is listed, not compared.
  const other = structuredClone(files[1].file);
  other.model.fingerprint = 'ffffffffffffffff';
  assert.match(
    buildScoresReport([files[0], { name: 'other.json', file: other }]).html,
    /Not compared \(scored on another model\): other\.json/,
  );
});

test('rank statistics', () => {
  assert.deepEqual(averageRanks([3, 1, 3, 2]), [3.5, 1, 3.5, 2]);
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
  assert.ok(Math.abs(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) - 0.8) < 1e-12);
});

test('an incomplete shard: cells only for the scored heads, marked incomplete', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const file = score(dir, 'mope', { shard: { index: 2, count: 3 } });
  const report = buildScoresReport([{ name: 'shard2.json', file }]);
  assertWellFormed(report.html, 'report.html');
  const heads = file.modules.filter((m) => m.tower === 'vision' && m.kind === 'head');
  assert.equal(cellsOf(figure(report, 'shard2-vision-heads'), 'cell').length, heads.length);
  assert.ok(heads.length < 12);
  assert.match(report.html, /shard 2\/3/);
});

test('CLI: report --out --svg-dir / --png-dir writes the HTML and standalone SVG / PNG files; bad input is a clear error, nothing written', async (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  score(dir, 'mope');
  score(dir, 'random');
  const out = join(dir, 'r', 'report.html'),
    svgDir = join(dir, 'svg');
  const summary = JSON.parse(
    await cli(['report', join(dir, 'mope.json'), join(dir, 'random.json'), '--out', out, '--svg-dir', svgDir]),
  );
  assert.equal(summary.out, out);
  const html = readFileSync(out, 'utf8');
  assertWellFormed(html, 'report.html');
  assert.ok(html.includes('Criteria compared'));
  const svgs = readdirSync(svgDir)
    .filter((f) => f.endsWith('.svg'))
    .sort();
  assert.deepEqual(svgs, [...summary.figures].map((f: string) => `${f}.svg`).sort());
  for (const f of svgs) {
    const s = readFileSync(join(svgDir, f), 'utf8');
    assert.match(s, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assertWellFormed(s, f);
  }
  assert.equal(cellsOf(readFileSync(join(svgDir, 'mope-text-heads.svg'), 'utf8'), 'cell').length, 12);

  const pngDir = join(dir, 'png');
  const s2 = JSON.parse(
    await cli(['report', join(dir, 'random.json'), '--out', join(dir, 'r2.html'), '--png-dir', pngDir]),
  );
  for (const f of s2.figures as string[]) {
    assert.deepEqual(
      [...readFileSync(join(pngDir, `${f}.png`)).subarray(0, 8)],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      `${f}.png is a PNG`,
    );
  }

  const bad = join(dir, 'bad.json'),
    out2 = join(dir, 'nothing.html');
  writeFileSync(bad, '{"format":"mope-clip-scores","version":1,"modules":[');
  await assert.rejects(
    cli(['report', join(dir, 'mope.json'), bad, '--out', out2]),
    (e: Error) => e instanceof ConfigError && /bad\.json.*scores file/.test(e.message),
  );
  await assert.rejects(
    cli(['report', join(dir, 'missing.json'), '--out', out2]),
    (e: Error) => e instanceof ConfigError && /missing\.json: scores file not found/.test(e.message),
  );
  await assert.rejects(
    cli(['report', join(dir, 'mope.json')]),
    (e: Error) => e instanceof ConfigError && /--out/.test(e.message),
  );
  assert.equal(existsSync(out2), false, 'nothing written on bad input');
});
