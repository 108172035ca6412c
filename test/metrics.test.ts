// Eval metrics on hand-computed cases: retrieval recall@K with several captions per image, ties broken by
// index, K larger than N; zero-shot acc@K and mean per-class recall; templates and the template-file reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../src/errors.ts';
import { rankOf, retrievalRecall, retrievalRecallBlocked, topK, zeroshotAccuracy } from '../src/eval/metrics.ts';
import {
  fillTemplate,
  OPENAI_IMAGENET_TEMPLATES,
  OPENAI_SIMPLE_TEMPLATES,
  parseTemplates,
  readTemplateFile,
  resolveTemplates,
} from '../src/eval/templates.ts';
import { Rng } from '../src/data/dataset.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

const F = (rows: number[][]) => Float32Array.from(rows.flat());

test('rankOf and topK: descending score, ties by lower index first', () => {
  const row = [0.5, 0.9, 0.5, 0.1, 0.9];
  assert.deepEqual(topK(row, 5), [1, 4, 0, 2, 3]);
  assert.deepEqual(topK(row, 2), [1, 4]);
  assert.deepEqual(topK(row, 99), [1, 4, 0, 2, 3]);
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((j) => rankOf(row, j)),
    [2, 0, 3, 4, 1],
  );
  assert.equal(rankOf([NaN, 0.1, 0.2], 0), 2); // NaN ranks last
});

// 3 images, 5 captions: image 0 has captions 0 and 1, image 1 caption 2, image 2 captions 3 and 4.
const CAP_IMG = [0, 0, 1, 2, 2];
const S = F([
  [0.9, 0.1, 0.2], // t0 → img 0 rank 0
  [0.3, 0.5, 0.1], // t1 → img 0 rank 1
  [0.2, 0.4, 0.4], // t2 → img 1 rank 0 (tie with img 2, lower index first)
  [0.5, 0.5, 0.5], // t3 → img 2 rank 2 (three-way tie)
  [0.1, 0.0, 0.8], // t4 → img 2 rank 0
]);

test('retrieval recall@K: several captions per image, ties, K > N (hand-computed)', () => {
  const r = retrievalRecall(S, CAP_IMG, 5, 3, [1, 2, 3, 10]);
  // text→image: hits@1 t0,t2,t4; @2 adds t1; @3 adds t3.
  assert.deepEqual(r.imageRetrieval, { 1: 3 / 5, 2: 4 / 5, 3: 1, 10: 1 });
  // image→text: img 0's best caption t0 (0.9) rank 0; img 1's only caption t2 (0.4) is behind t1 and t3 (0.5):
  // rank 2; img 2's best caption t4 (0.8) rank 0.
  assert.deepEqual(r.textRetrieval, { 1: 2 / 3, 2: 2 / 3, 3: 1, 10: 1 });
});

test('retrieval recall: a tie with a lower-indexed item ranks the positive second', () => {
  const r = retrievalRecall(
    F([
      [0.5, 0.5],
      [0.5, 0.5],
    ]),
    [0, 1],
    2,
    2,
    [1, 2],
  );
  assert.deepEqual(r.imageRetrieval, { 1: 0.5, 2: 1 });
  assert.deepEqual(r.textRetrieval, { 1: 0.5, 2: 1 });
});

test('retrieval recall: an image whose two captions tie takes the lower-indexed one as its best', () => {
  // img 0: captions 0 and 2 both score 0.7 with it; caption 1 (of img 1) scores 0.7 too → best positive t0, rank 0.
  const r = retrievalRecall(
    F([
      [0.7, 0.0],
      [0.7, 0.9],
      [0.7, 0.1],
    ]),
    [0, 1, 0],
    3,
    2,
    [1],
  );
  assert.equal(r.textRetrieval[1], 1);
  // t2 → img 0 ties nothing higher (0.7 vs 0.1): hit; t1 → img 1 0.9 > 0.7 hit; t0 hit.
  assert.equal(r.imageRetrieval[1], 1);
});

/** Naive definition via explicit top-K lists (CLIP_benchmark: true positives in the top K > 0). */
function naiveRecall(s: Float32Array, capImg: number[], NT: number, NI: number, k: number) {
  let ir = 0,
    tr = 0;
  for (let t = 0; t < NT; t++) if (topK(s.subarray(t * NI, (t + 1) * NI), k).includes(capImg[t])) ir++;
  for (let i = 0; i < NI; i++) {
    const col = Array.from({ length: NT }, (_, t) => s[t * NI + i]);
    if (topK(col, k).some((t) => capImg[t] === i)) tr++;
  }
  return [ir / NT, tr / NI];
}

test('retrieval recall matches the top-K list definition on random data with many ties; blocked = full', () => {
  const rng = new Rng(7);
  for (const [NT, NI] of [
    [12, 4],
    [30, 7],
    [9, 9],
  ]) {
    const capImg = Array.from({ length: NT }, (_, t) => (t < NI ? t : rng.int(NI)));
    const s = Float32Array.from({ length: NT * NI }, () => Math.round(rng.next() * 4) / 4); // coarse → ties
    const full = retrievalRecall(s, capImg, NT, NI, [1, 2, 5, 10, 50]);
    for (const k of [1, 2, 5, 10, 50]) {
      const [ir, tr] = naiveRecall(s, capImg, NT, NI, k);
      assert.equal(full.imageRetrieval[k], ir, `image R@${k}`);
      assert.equal(full.textRetrieval[k], tr, `text R@${k}`);
    }
    for (const block of [1, 3, 5]) {
      const b = retrievalRecallBlocked((a, z) => s.slice(a * NI, z * NI), capImg, NT, NI, [1, 2, 5, 10, 50], block);
      assert.deepEqual(b, full);
    }
  }
});

test('retrieval recall rejects inconsistent inputs', () => {
  assert.throws(() => retrievalRecall(S, [0, 0, 0, 2, 2], 5, 3), /image 1 has no caption/);
  assert.throws(() => retrievalRecall(S, [0, 0, 1, 2, 3], 5, 3), /outside/);
  assert.throws(() => retrievalRecall(S.subarray(1), CAP_IMG, 5, 3), /expected NT·NI/);
});

test('zero-shot accuracy: top-1/top-K with ties and K > classes; mean per-class recall over present classes', () => {
  const logits = F([
    [0.9, 0.1, 0.0, 0.0], // label 0, rank 0
    [0.5, 0.5, 0.1, 0.0], // label 1, tie with class 0 → rank 1
    [0.2, 0.3, 0.1, 0.0], // label 2, rank 2
    [0.0, 0.0, 0.7, 0.0], // label 2, rank 0
  ]);
  const r = zeroshotAccuracy(logits, [0, 1, 2, 2], 4, 4, [1, 2, 5]);
  assert.deepEqual(r.topk, { 1: 0.5, 2: 0.75, 5: 1 });
  // class 0: 1/1, class 1: 0/1, class 2: 1/2; class 3 has no images and is left out.
  assert.equal(r.meanPerClassRecall, (1 + 0 + 0.5) / 3);
  assert.throws(() => zeroshotAccuracy(logits, [0, 1, 2, 4], 4, 4), /outside/);
});

test('templates: OpenAI 80 and the 7-template subset verbatim; template files', (ctx) => {
  assert.equal(OPENAI_IMAGENET_TEMPLATES.length, 80);
  assert.equal(new Set(OPENAI_IMAGENET_TEMPLATES).size, 80);
  assert.equal(OPENAI_IMAGENET_TEMPLATES[0], 'a bad photo of a {}.');
  assert.equal(OPENAI_IMAGENET_TEMPLATES[79], 'a tattoo of the {}.');
  assert.deepEqual(
    [...OPENAI_SIMPLE_TEMPLATES],
    [
      'itap of a {}.',
      'a bad photo of the {}.',
      'a origami {}.',
      'a photo of the large {}.',
      'a {} in a video game.',
      'art of the {}.',
      'a photo of the small {}.',
    ],
  );
  for (const t of OPENAI_SIMPLE_TEMPLATES) assert.ok(OPENAI_IMAGENET_TEMPLATES.includes(t));
  assert.equal(resolveTemplates().length, 7);
  assert.equal(resolveTemplates('openai-80').length, 80);
  assert.equal(fillTemplate('a {} in a video game.', 'bag'), 'a bag in a video game.');

  const dir = makeTempDir('mope-tpl-');
  ctx.after(() => removeDir(dir));
  const good = join(dir, 'good.txt');
  writeFileSync(good, '# my templates\na photo of a {}.\n\n  a drawing of the {}.  \n');
  assert.deepEqual(readTemplateFile(good), ['a photo of a {}.', 'a drawing of the {}.']);
  const bad = join(dir, 'bad.txt');
  writeFileSync(bad, 'a photo of a {}.\na photo without a slot\n');
  assert.throws(
    () => readTemplateFile(bad),
    (e: unknown) => e instanceof DataError && e.message.includes(`${bad}:2`) && e.message.includes('{}'),
  );
  assert.throws(() => parseTemplates('\n# only a comment\n', 'x.txt'), /no templates/);
  assert.throws(() => readTemplateFile(join(dir, 'missing.txt')), DataError);
});
