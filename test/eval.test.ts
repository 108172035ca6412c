// End-to-end evaluation on a tiny random checkpoint (zero-shot on builtin:fashion-mnist, retrieval on a
// jsonl set with several captions per image), checked against tools/eval_reference.py (numpy), which
// recomputes every metric from the embeddings this test dumps to test/golden/eval/.
// Regenerate: MOPE_WRITE_GOLDEN=1 node --import tsx --test test/eval.test.ts && python3 tools/eval_reference.py
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNativeKernels } from '../src/engine/native.ts';
import { silentLogger, type Runtime } from '../src/engine/runtime.ts';
import { ConfigError } from '../src/errors.ts';
import { exportDataset } from '../src/data/export.ts';
import { openDataset } from '../src/data/spec.ts';
import type { ClassificationDataset, PairsDataset } from '../src/data/dataset.ts';
import { embedDatasetImages, embedTexts } from '../src/eval/embed-data.ts';
import { retrievalRecall, zeroshotAccuracy } from '../src/eval/metrics.ts';
import { loadEvalModel, runEval } from '../src/eval/run.ts';
import type { RetrievalResult } from '../src/eval/retrieval.ts';
import { fillTemplate, OPENAI_SIMPLE_TEMPLATES } from '../src/eval/templates.ts';
import type { ZeroshotResult } from '../src/eval/zeroshot.ts';
import { writeTinyCheckpoint } from './helpers/tiny.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

const here = dirname(fileURLToPath(import.meta.url));
const GOLD = join(here, 'golden', 'eval');
const WRITE = process.env.MOPE_WRITE_GOLDEN === '1';
const root = makeTempDir('mope-eval-');
test.after(() => removeDir(root));

const kernels = loadNativeKernels();
kernels.setThreads(1);
const rt: Runtime = { kernels, threads: 1, seed: 0, log: silentLogger };
const modelDir = join(root, 'tiny');
mkdirSync(modelDir);
writeTinyCheckpoint(modelDir, { seed: 3, withTokenizer: true });

const ZS = { data: 'builtin:fashion-mnist:test', limit: 60, seed: 1 };

/** A jsonl retrieval set with 1–3 captions per image, built from exported fashion scenes. */
async function retrievalSet(): Promise<string> {
  const out = join(root, 'scenes');
  const r = await exportDataset('builtin:fashion-scenes:test', out, { limit: 16, seed: 2, progress: false });
  const rows = readFileSync(r.csv, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','));
  const lines = rows.map(([p, cap], i) =>
    JSON.stringify(
      i % 3 === 0
        ? { image: p, caption: cap }
        : {
            image: p,
            captions: [cap, cap.replace(/^a /, 'one '), ...(i % 3 === 2 ? [`${cap.split(' in ')[0]}`] : [])],
          },
    ),
  );
  const f = join(out, 'pairs.jsonl');
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

const round = (x: Float32Array) => Array.from(x, (v) => Number(v.toPrecision(9)));
const close = (a: number[], b: number[], tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
};

test('zero-shot eval end to end: result fields, metrics from the same embeddings, numpy reference', async () => {
  const r = (await runEval(rt, { modelDir, task: 'zeroshot', ...ZS, progress: false, workers: 1 })) as ZeroshotResult;
  assert.deepEqual(Object.keys(r).slice(0, 10), [
    'task',
    'data',
    'acc1',
    'acc5',
    'mean_per_class_recall',
    'n',
    'templates',
    'params',
    'seconds',
    'limit',
  ]);
  assert.equal(r.task, 'zeroshot');
  assert.equal(r.data, ZS.data);
  assert.deepEqual(r.n, { images: 60, classes: 10 });
  assert.equal(r.templates, 7);
  assert.ok(r.params > 0 && r.seconds > 0);
  for (const k of ['acc1', 'acc5', 'mean_per_class_recall'] as const) assert.ok(r[k] >= 0 && r[k] <= 1);

  // The same embeddings through the library pieces: template embeddings and image embeddings.
  const m = await loadEvalModel(rt, modelDir);
  const ds = openDataset(ZS.data, ZS).dataset as ClassificationDataset;
  const texts = ds.classnames.flatMap((c) => OPENAI_SIMPLE_TEMPLATES.map((t) => fillTemplate(t, c)));
  const txt = await embedTexts(m, texts, { progress: false });
  const img = await embedDatasetImages(m, ds, { progress: false, workers: 0 });
  const labels = img.indices.map((i) => ds.get(i).label);
  const dump = {
    E: m.model.config.projectionDim,
    classes: ds.classnames.length,
    templates: OPENAI_SIMPLE_TEMPLATES.length,
    labels,
    template_embeds: round(txt.embeds),
    image_embeds: round(img.embeds),
  };
  const file = join(GOLD, 'zeroshot_embeddings.json');
  if (WRITE) writeFileSync(file, JSON.stringify(dump) + '\n');
  const gold = JSON.parse(readFileSync(file, 'utf8')) as typeof dump;
  close(dump.image_embeds, gold.image_embeds, 1e-4, 'image embeddings vs golden');
  close(dump.template_embeds, gold.template_embeds, 1e-4, 'template embeddings vs golden');
  assert.deepEqual(gold.labels, labels);

  // Our metric code on the golden embeddings must equal numpy's computation from the same numbers.
  const ref = JSON.parse(readFileSync(join(GOLD, 'reference.json'), 'utf8')).zeroshot;
  const mine = zeroshotFromEmbeddings(gold);
  for (const k of ['acc1', 'acc5', 'mean_per_class_recall'] as const)
    assert.ok(Math.abs(mine[k] - ref[k]) < 1e-12, `${k}: ${mine[k]} vs numpy ${ref[k]}`);
  // And the live eval on this machine gives the reference numbers.
  for (const k of ['acc1', 'acc5', 'mean_per_class_recall'] as const)
    assert.ok(Math.abs(r[k] - ref[k]) < 1e-12, `live ${k}: ${r[k]} vs numpy ${ref[k]}`);
});

function zeroshotFromEmbeddings(g: {
  E: number;
  classes: number;
  templates: number;
  labels: number[];
  template_embeds: number[];
  image_embeds: number[];
}) {
  const { E, classes: NC, templates: T } = g;
  const W = new Float64Array(NC * E);
  for (let c = 0; c < NC; c++) {
    for (let t = 0; t < T; t++) {
      const o = (c * T + t) * E;
      let n = 0;
      for (let e = 0; e < E; e++) n += g.template_embeds[o + e] ** 2;
      for (let e = 0; e < E; e++) W[c * E + e] += g.template_embeds[o + e] / Math.sqrt(n) / T;
    }
    let n = 0;
    for (let e = 0; e < E; e++) n += W[c * E + e] ** 2;
    for (let e = 0; e < E; e++) W[c * E + e] /= Math.sqrt(n);
  }
  const N = g.labels.length;
  const logits = new Float64Array(N * NC);
  for (let i = 0; i < N; i++) {
    let n = 0;
    for (let e = 0; e < E; e++) n += g.image_embeds[i * E + e] ** 2;
    for (let c = 0; c < NC; c++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += (g.image_embeds[i * E + e] / Math.sqrt(n)) * W[c * E + e];
      logits[i * NC + c] = s;
    }
  }
  const a = zeroshotAccuracy(logits, g.labels, N, NC, [1, 5]);
  return { acc1: a.topk[1], acc5: a.topk[5], mean_per_class_recall: a.meanPerClassRecall };
}

test('retrieval eval end to end: several captions per image, numpy reference, cache hit gives the same result', async () => {
  const f = await retrievalSet();
  const spec = `jsonl:${f}`;
  const cacheDir = join(root, 'cache');
  const r = (await runEval(rt, {
    modelDir,
    task: 'retrieval',
    data: spec,
    progress: false,
    cacheDir,
    workers: 1,
  })) as RetrievalResult;
  assert.deepEqual(Object.keys(r), [
    'task',
    'data',
    'image_retrieval_recall@1',
    'image_retrieval_recall@5',
    'image_retrieval_recall@10',
    'text_retrieval_recall@1',
    'text_retrieval_recall@5',
    'text_retrieval_recall@10',
    'mean_recall@1',
    'rsum',
    'n',
    'params',
    'seconds',
  ]);
  assert.equal(r.data, spec);
  assert.equal(r.n.images, 16);
  assert.ok(r.n.captions > 16);
  assert.equal(r['mean_recall@1'], (r['image_retrieval_recall@1'] + r['text_retrieval_recall@1']) / 2);

  const m = await loadEvalModel(rt, modelDir);
  const ds = openDataset(spec).dataset as PairsDataset;
  const img = await embedDatasetImages(m, ds, { progress: false, workers: 0 });
  const captions: string[] = [];
  const captionImage: number[] = [];
  img.indices.forEach((i, row) =>
    ds.get(i).captions.forEach((c) => {
      captions.push(c);
      captionImage.push(row);
    }),
  );
  const txt = await embedTexts(m, captions, { progress: false });
  const dump = {
    E: m.model.config.projectionDim,
    caption_image: captionImage,
    text_embeds: round(txt.embeds),
    image_embeds: round(img.embeds),
  };
  const file = join(GOLD, 'retrieval_embeddings.json');
  if (WRITE) writeFileSync(file, JSON.stringify(dump) + '\n');
  const gold = JSON.parse(readFileSync(file, 'utf8')) as typeof dump;
  assert.deepEqual(gold.caption_image, captionImage);
  close(dump.image_embeds, gold.image_embeds, 1e-4, 'image embeddings vs golden');
  close(dump.text_embeds, gold.text_embeds, 1e-4, 'text embeddings vs golden');

  const NT = captionImage.length,
    NI = img.indices.length,
    E = gold.E;
  const norm = (x: number[], n: number) => {
    const out = new Float64Array(x.length);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += x[i * E + e] ** 2;
      for (let e = 0; e < E; e++) out[i * E + e] = x[i * E + e] / Math.sqrt(s);
    }
    return out;
  };
  const T = norm(gold.text_embeds, NT),
    I = norm(gold.image_embeds, NI);
  const S = new Float64Array(NT * NI);
  for (let t = 0; t < NT; t++)
    for (let i = 0; i < NI; i++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += T[t * E + e] * I[i * E + e];
      S[t * NI + i] = s;
    }
  const mine = retrievalRecall(S, gold.caption_image, NT, NI, [1, 5, 10]);
  const ref = JSON.parse(readFileSync(join(GOLD, 'reference.json'), 'utf8')).retrieval;
  for (const k of [1, 5, 10]) {
    assert.ok(Math.abs(mine.imageRetrieval[k] - ref[`image_retrieval_recall@${k}`]) < 1e-12, `image R@${k}`);
    assert.ok(Math.abs(mine.textRetrieval[k] - ref[`text_retrieval_recall@${k}`]) < 1e-12, `text R@${k}`);
    assert.ok(
      Math.abs(r[`image_retrieval_recall@${k}` as 'rsum'] - ref[`image_retrieval_recall@${k}`]) < 1e-12,
      `live image R@${k}`,
    );
    assert.ok(
      Math.abs(r[`text_retrieval_recall@${k}` as 'rsum'] - ref[`text_retrieval_recall@${k}`]) < 1e-12,
      `live text R@${k}`,
    );
  }
  assert.ok(Math.abs(r.rsum - ref.rsum) < 1e-12);

  // Second run: embeddings come from --cache (two entries: image + text), same numbers.
  assert.ok(existsSync(cacheDir));
  const again = (await runEval(rt, {
    modelDir,
    task: 'retrieval',
    data: spec,
    progress: false,
    cacheDir,
  })) as RetrievalResult;
  assert.equal(again.rsum, r.rsum);
});

test('eval refuses a task that does not fit the data', async () => {
  await assert.rejects(
    runEval(rt, { modelDir, task: 'zeroshot', data: 'builtin:fashion-scenes:test', limit: 4 }),
    (e: unknown) => e instanceof ConfigError && /--task retrieval/.test(e.message),
  );
  await assert.rejects(
    runEval(rt, { modelDir, task: 'retrieval', data: 'builtin:fashion-mnist:test', limit: 4 }),
    (e: unknown) => e instanceof ConfigError && /--task zeroshot/.test(e.message),
  );
});
