// The browser page (web/) in headless Debian Chromium via playwright-core, served by src/deploy/server.ts: the page's
// tokenizer gives mope-clip's ids; on mope-clip's own pixel tensor (test hook) its probabilities match the engine
// tightly; through the real canvas path (upload, typed labels, displayed table) within a measured tolerance; dense
// and pruned side by side; q8 switch; server routes and the `serve` command.
// Dims: tiny towers, images [1,3,64,64], texts ≤ 77 tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { makeTempDir, removeDir } from './helpers/tiny.ts';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { saveCheckpoint } from '../src/io/checkpoint.ts';
import { loadTokenizerFromFolder, type ClipTokenizer } from '../src/io/tokenizer.ts';
import { loadPreprocessorConfig, preprocessImage } from '../src/io/preprocess.ts';
import { GEOMETRIES, initClipModel, type ClipGeometry } from '../src/model/init.ts';
import { clipLogits, encodeImages, encodeTexts } from '../src/model/encode.ts';
import type { ClipModel } from '../src/model/types.ts';
import { exportModel } from '../src/export/export.ts';
import { startServer, type RunningServer } from '../src/deploy/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const IMAGES = ['chelsea.png', 'coffee.png'].map((f) => join(repo, 'test/golden/images', f));
const LABELS = ['a photo of a cat', 'a photo of a dog', 'a cup of coffee &amp; a saucer', 'a rocket launch'];
// Measured on Chromium 156 (Debian bookworm), chelsea.png 451×300 and coffee.png 600×400 → 64×64: canvas pixels vs
// PIL bicubic differ by a mean of 0.032 and at most 0.43 in normalised units (≈ 0.9 % / 11 % of the 0–255 range);
// probabilities by at most 0.014 (dense) / 0.004 (pruned). Print them with BROWSER_VERBOSE=1. Bounds leave ~3× margin.
const PIXEL_MEAN_TOL = 0.1;
const PROB_TOL_CANVAS = 0.05;
const PROB_TOL_EXACT = 1e-5;

const rt: Runtime = { kernels: loadNativeKernels(), threads: 2, seed: 0, log: silentLogger };
const root = makeTempDir('mope-browser-');
let browser: Browser;
let server: RunningServer;
const models: Record<'dense' | 'pruned', { model: ClipModel; dir: string; tok: ClipTokenizer }> = {} as never;

const tinyGeometry: ClipGeometry = {
  ...GEOMETRIES.tiny,
  vision: { ...GEOMETRIES.tiny.vision, imageSize: 64, patchSize: 16 },
};
const prunedGeometry: ClipGeometry = {
  text: { ...tinyGeometry.text, heads: [3, 2], ffn: [64, 33], headDim: 8 },
  vision: { ...tinyGeometry.vision, heads: [2, 4], ffn: [50, 96], headDim: 12 },
  projectionDim: tinyGeometry.projectionDim,
};

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the browser test needs Debian's chromium package (bash scripts/setup.sh installs it; or apt-get install -y chromium)`,
    );
  }
  for (const [name, g, seed] of [
    ['dense', tinyGeometry, 7],
    ['pruned', prunedGeometry, 8],
  ] as const) {
    const src = join(root, `${name}-src`);
    mkdirSync(src);
    // Larger-than-default weights so the probabilities are far from uniform.
    const model = initClipModel(g, seed, { std: 0.1 });
    saveCheckpoint(model, src);
    const dir = join(root, name);
    await exportModel(src, dir, { quantize: ['q8'] });
    models[name] = { model, dir, tok: loadTokenizerFromFolder(dir) };
  }
  server = await startServer({ models: [models.dense.dir, models.pruned.dir], port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
  removeDir(root);
});

/** mope-clip in Node: engine forward on the PIL-exact pixels → softmax(logits_per_image). */
async function nodeProbs(
  name: 'dense' | 'pruned',
  image: string,
  labels: string[],
): Promise<{ probs: number[]; pixels: Float32Array }> {
  const { model, dir, tok } = models[name];
  const pre = await loadPreprocessorConfig(dir, model.config.vision.imageSize);
  const pixels = await preprocessImage(image, pre);
  const E = model.config.projectionDim;
  const t = encodeTexts(
    rt,
    model,
    labels.map((l) => tok.encode(l)),
  );
  const i = encodeImages(rt, model, pixels, 1);
  const logits = Array.from(clipLogits(rt, t, labels.length, i, 1, E, model.weights.logitScale[0]!));
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return { probs: e.map((x) => x / s), pixels };
}

async function openPage(query = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.setDefaultTimeout(120_000); // a loaded CI machine runs other tests beside this one
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url + query);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('status')!.dataset.state!));
  const status = await page.textContent('#status');
  assert.equal(
    await page.getAttribute('#status', 'data-state'),
    'ready',
    `page did not load: ${status} ${errors.join('; ')}`,
  );
  return page;
}

/** Uploads an image with the given labels and waits for run number `run`; returns the displayed rows per panel. */
async function classifyThroughUi(page: Page, image: string, labels: string[], run: number) {
  await page.fill('#labels', labels.join('\n'));
  await page.setInputFiles('#file', image);
  await page.waitForFunction((n) => {
    const s = document.getElementById('status')!;
    return s.dataset.state === 'error' || Number(s.dataset.run) >= n;
  }, run);
  assert.notEqual(await page.getAttribute('#status', 'data-state'), 'error', (await page.textContent('#status')) ?? '');
  return page.$$eval('.panel', (panels) =>
    panels.map((p) => ({
      name: p.querySelector('h2')!.textContent,
      meta: p.querySelector('.meta')!.textContent,
      ms: Number((p.querySelector('.time') as HTMLElement).dataset.ms),
      rows: [...p.querySelectorAll('tr.result')].map((r) => ({
        label: (r as HTMLElement).dataset.label!,
        prob: Number((r as HTMLElement).dataset.prob),
        shown: r.querySelector('.prob')!.textContent!,
        shownLabel: r.querySelector('.label')!.textContent!,
      })),
    })),
  );
}

test('browser: the page tokenizer gives mope-clip ids', async () => {
  const page = await openPage();
  const texts = [
    'a photo of a cat',
    'A cup of COFFEE, on a table!',
    'naïve café façade — 2 dogs & 3 cats',
    'tom&amp;jerry &lt;3 &#x1F600; &copy',
    'tabs\tand\u00a0nbsp\u2003spaces ',
    "it's the dog's",
    '',
    'word '.repeat(100),
  ];
  for (const t of texts) {
    const ids = await page.evaluate((s) => (window as any).mope.tokenize(s), t);
    assert.deepEqual(ids, models.dense.tok.encode(t), JSON.stringify(t));
  }
  await page.close();
});

test('browser: on mope-clip pixels the page matches the engine (≤ 1e-5), dense and pruned', async () => {
  const page = await openPage();
  for (const [slot, name] of [
    [0, 'dense'],
    [1, 'pruned'],
  ] as const) {
    for (const image of IMAGES) {
      const ref = await nodeProbs(name, image, LABELS);
      const got: number[] = await page.evaluate(
        ([s, px, labels]) => (window as any).mope.classifyPixels(s, px, labels),
        [slot, Array.from(ref.pixels), LABELS] as const,
      );
      const worst = Math.max(...got.map((p, i) => Math.abs(p - ref.probs[i]!)));
      if (process.env.BROWSER_VERBOSE)
        console.log(`exact pixels, ${name} ${image.split('/').pop()}: max |Δp| ${worst.toExponential(2)}`);
      assert.ok(worst <= PROB_TOL_EXACT, `${name} ${image}: max |Δp| ${worst}`);
    }
  }
  await page.close();
});

test('browser: upload + typed labels → displayed probabilities close to mope-clip (canvas resampling)', async () => {
  const page = await openPage();
  let run = 0;
  const measured: string[] = [];
  for (const image of IMAGES) {
    const panels = await classifyThroughUi(page, image, LABELS, ++run);
    assert.deepEqual(
      panels.map((p) => p.name),
      ['dense', 'pruned'],
    );
    assert.match(panels[1]!.meta!, /pruned/);
    for (const [slot, name] of [
      [0, 'dense'],
      [1, 'pruned'],
    ] as const) {
      const ref = await nodeProbs(name, image, LABELS);
      const shown = panels[slot]!;
      assert.ok(shown.ms > 0, 'time taken shown');
      assert.deepEqual(
        shown.rows.map((r) => r.label),
        LABELS,
      );
      assert.deepEqual(
        shown.rows.map((r) => r.shownLabel),
        LABELS,
      );
      assert.ok(Math.abs(shown.rows.reduce((a, r) => a + r.prob, 0) - 1) < 1e-9);
      for (const r of shown.rows) assert.equal(r.shown, `${(100 * r.prob).toFixed(1)}%`);
      const worst = Math.max(...shown.rows.map((r, i) => Math.abs(r.prob - ref.probs[i]!)));
      // The canvas pixels themselves against PIL's.
      const px: number[] = await page.evaluate((s) => (window as any).mope.pixels(s), slot);
      assert.equal(px.length, ref.pixels.length);
      let sum = 0,
        max = 0;
      px.forEach((v, i) => {
        const d = Math.abs(v - ref.pixels[i]!);
        sum += d;
        max = Math.max(max, d);
      });
      const mean = sum / px.length;
      measured.push(
        `${name} ${image.split('/').pop()}: pixels mean |Δ| ${mean.toFixed(4)}, max ${max.toFixed(3)}; max |Δp| ${worst.toFixed(4)}`,
      );
      assert.ok(mean <= PIXEL_MEAN_TOL, measured.at(-1));
      assert.ok(worst <= PROB_TOL_CANVAS, measured.at(-1));
      // The top label agrees unless the engine's top two are within the tolerance.
      const sorted = [...ref.probs].sort((a, b) => b - a);
      if (sorted[0]! - sorted[1]! > 2 * PROB_TOL_CANVAS) {
        assert.equal(
          shown.rows.findIndex((r) => r.prob === Math.max(...shown.rows.map((x) => x.prob))),
          ref.probs.indexOf(sorted[0]!),
        );
      }
    }
  }
  if (process.env.BROWSER_VERBOSE) console.log(measured.join('\n'));
  await page.close();
});

test('browser: ?a= / ?b= folders, q8 weights, one model alone', async () => {
  const page = await openPage('?a=/m/1/');
  assert.equal(await page.locator('.panel').count(), 1);
  await page.selectOption('#precision', '_quantized');
  await page.waitForFunction(() =>
    document.querySelector('.panel .meta')?.textContent?.includes('model_quantized.onnx'),
  );
  const panels = await classifyThroughUi(page, IMAGES[0]!, LABELS.slice(0, 2), 1);
  assert.equal(panels.length, 1);
  assert.match(panels[0]!.meta!, /model_quantized\.onnx/);
  const ref = await nodeProbs('pruned', IMAGES[0]!, LABELS.slice(0, 2));
  // int8 weights and the canvas path together: a looser bound.
  assert.ok(Math.abs(panels[0]!.rows[0]!.prob - ref.probs[0]!) < 0.15);
  await page.close();
});

test('server: routes, no escapes, methods; serve CLI prints a loopback URL', async () => {
  const get = (p: string, init?: RequestInit) => fetch(server.url.replace(/\/$/, '') + p, init);
  const listing = await (await get('/models.json')).json();
  assert.deepEqual(
    listing.models.map((m: { url: string }) => m.url),
    ['/m/0/', '/m/1/'],
  );
  const html = await get('/');
  assert.equal(html.status, 200);
  assert.match(html.headers.get('content-type')!, /text\/html/);
  assert.equal(html.headers.get('cross-origin-embedder-policy'), 'require-corp');
  assert.equal(
    (await get('/ort/ort-wasm-simd-threaded.wasm', { method: 'HEAD' })).headers.get('content-type'),
    'application/wasm',
  );
  assert.equal((await get('/m/1/onnx/model.onnx', { method: 'HEAD' })).status, 200);
  for (const bad of [
    '/m/0/../../etc/passwd',
    '/m/0/%2e%2e/%2e%2e/etc/passwd',
    '/m/5/config.json',
    '/ort/../package.json',
    '/..%2fpackage.json',
    '/nope',
  ]) {
    assert.equal((await get(bad)).status, 404, bad);
  }
  assert.equal((await get('/', { method: 'POST' })).status, 405);

  const bin = join(repo, 'bin', 'mope-clip.mjs');
  const child = spawn(process.execPath, [bin, 'serve', models.dense.dir, '--port', '0', '--quiet']);
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) ok(m[1]!);
    });
    child.on('exit', (code) => fail(new Error(`serve exited ${code}`)));
  });
  assert.equal((await fetch(url + 'models.json').then((r) => r.json())).models.length, 1);
  child.kill('SIGTERM');
  await new Promise((ok) => child.on('exit', ok));

  const missing = spawn(process.execPath, [bin, 'serve', join(root, 'dense-src'), '--port', '0']);
  let err = '';
  missing.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise((ok) => missing.on('exit', ok));
  assert.equal(code, 1);
  assert.match(err, /lacks onnx\/model\.onnx; serve a folder written by mope-clip export/);
});
