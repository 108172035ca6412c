// Data sources: every reader on small files written here, bad-input errors naming file and line/entry,
// --skip-bad counts, builtin sets deterministic with disjoint splits, --limit/--seed, the loader, export round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ConfigError, DataError } from '../src/errors.ts';
import { BadItemLog, subsetIndices, type ClassificationDataset, type PairsDataset } from '../src/data/dataset.ts';
import { openDataset, parseDataSpec } from '../src/data/spec.ts';
import { parseDelimited } from '../src/data/readers/csv.ts';
import { clearExistsCache } from '../src/data/readers/common.ts';
import { fashionSplitRefs, FASHION_CLASSNAMES, splitRange } from '../src/data/fashion.ts';
import { renderScene, SCENE_COUNTS, sceneLayout, SCENE_SIZE } from '../src/data/scenes.ts';
import { exportDataset } from '../src/data/export.ts';
import { defaultDecodeWorkers, imageBatches } from '../src/data/loader.ts';
import { Progress } from '../src/ui/progress.ts';
import { cacheKey, cachedEmbeddings, readCache } from '../src/data/cache.ts';
import { defaultPreprocessorConfig, preprocessImage, preprocessRgb } from '../src/io/preprocess.ts';
import { decodeImage } from '../src/io/image.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

const root = makeTempDir('mope-data-');
test.after(() => removeDir(root));

async function png(path: string, value: number, w = 8, h = 6): Promise<void> {
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (value + i) % 256;
  await sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

/** A folder with images a.png, b.png, c.png (and sub/d.png). */
async function imagesDir(name: string): Promise<string> {
  const d = join(root, name);
  mkdirSync(join(d, 'sub'), { recursive: true });
  await png(join(d, 'a.png'), 10);
  await png(join(d, 'b.png'), 20);
  await png(join(d, 'c.png'), 30);
  await png(join(d, 'sub', 'd.png'), 40);
  return d;
}

const pairs = (s: string, o = {}) => openDataset(s, o).dataset as PairsDataset;
const captionsOf = (ds: PairsDataset) => Array.from({ length: ds.size }, (_, i) => ds.get(i).captions);

test('spec parsing: kinds, coco split, builtin splits, unknown kinds', () => {
  assert.deepEqual(parseDataSpec('csv:a/b.csv'), { kind: 'csv', path: 'a/b.csv' });
  assert.deepEqual(parseDataSpec('coco:/x/karpathy.json:test'), {
    kind: 'coco',
    path: '/x/karpathy.json',
    split: 'test',
  });
  assert.deepEqual(parseDataSpec('coco:/x/a:b.json'), { kind: 'coco', path: '/x/a:b.json' });
  assert.deepEqual(parseDataSpec('coco:k.json:train+restval'), {
    kind: 'coco',
    path: 'k.json',
    split: 'train+restval',
  });
  assert.deepEqual(parseDataSpec('builtin:fashion-mnist'), { kind: 'builtin', name: 'fashion-mnist', split: 'test' });
  assert.deepEqual(parseDataSpec('builtin:fashion-scenes:val'), {
    kind: 'builtin',
    name: 'fashion-scenes',
    split: 'val',
  });
  assert.throws(
    () => parseDataSpec('parquet:x'),
    (e: unknown) =>
      e instanceof ConfigError && /unknown data kind "parquet"/.test(e.message) && /csv:PATH/.test(e.message),
  );
  assert.throws(() => parseDataSpec('x.csv'), ConfigError);
  assert.throws(() => parseDataSpec('builtin:mnist'), /unknown builtin/);
  assert.throws(() => parseDataSpec('builtin:fashion-mnist:dev'), /unknown split/);
  assert.throws(() => parseDataSpec('csv:'), /needs a path/);
});

test('csv parser: quotes, embedded separators and newlines, CRLF, line numbers', () => {
  const r = parseDelimited('a,b\r\n"x, y","say ""hi"""\n\n"multi\nline",z\n', ',', 'f.csv');
  assert.deepEqual(
    r.map((x) => [x.fields, x.line]),
    [
      [['a', 'b'], 1],
      [['x, y', 'say "hi"'], 2],
      [['multi\nline', 'z'], 4],
    ],
  );
  assert.throws(() => parseDelimited('a,b\n"open,x\n', ',', 'f.csv'), /f\.csv:2: a quoted field is never closed/);
});

test('csv and tsv readers: default and custom keys, grouping captions per image, relative paths', async () => {
  const d = await imagesDir('csv');
  writeFileSync(
    join(d, 'data.csv'),
    'filepath,title\na.png,a red thing\nb.png,"a blue, round thing"\na.png,another caption of a\nsub/d.png,d\n',
  );
  const ds = pairs(`csv:${join(d, 'data.csv')}`);
  assert.equal(ds.kind, 'pairs');
  assert.equal(ds.size, 3);
  assert.deepEqual(captionsOf(ds), [['a red thing', 'another caption of a'], ['a blue, round thing'], ['d']]);
  assert.deepEqual(ds.get(0).image, { kind: 'file', path: join(d, 'a.png') });
  assert.deepEqual(ds.get(2).image, { kind: 'file', path: join(d, 'sub', 'd.png') });
  assert.equal(ds.get(1).ref, `${join(d, 'data.csv')}:3`);

  writeFileSync(join(d, 'custom.tsv'), 'id\timg\ttext\n1\ta.png\tfirst\n2\tc.png\tthird\n');
  const t = pairs(`tsv:${join(d, 'custom.tsv')}`, { imageKey: 'img', captionKey: 'text' });
  assert.deepEqual(captionsOf(t), [['first'], ['third']]);
  assert.throws(
    () => pairs(`tsv:${join(d, 'custom.tsv')}`),
    (e: unknown) =>
      e instanceof DataError &&
      e.message.includes(`${join(d, 'custom.tsv')}:1`) &&
      e.message.includes('"filepath" and "title"') &&
      e.message.includes('--image-key'),
  );
});

test('bad rows: error names file and line; --skip-bad skips and counts them', async () => {
  const d = await imagesDir('bad');
  const f = join(d, 'data.csv');
  writeFileSync(f, 'filepath,title\na.png,ok\nmissing.png,gone\nb.png,\nc.png,x,extra\nsub/d.png,fine\n');
  clearExistsCache();
  assert.throws(
    () => pairs(`csv:${f}`),
    (e: unknown) =>
      e instanceof DataError &&
      e.message.startsWith(`${f}:3:`) &&
      e.message.includes('missing.png') &&
      e.message.includes('--skip-bad'),
  );
  const { dataset, bad } = openDataset(`csv:${f}`, { skipBad: true });
  assert.equal(dataset.size, 2);
  assert.equal(bad.count, 3);
  assert.deepEqual(
    bad.items.map((b) => b.ref),
    [`${f}:3`, `${f}:4`, `${f}:5`],
  );
  assert.match(bad.items[1].reason, /empty caption/);
  assert.match(bad.items[2].reason, /expected 2 fields/);
  assert.match(bad.summary(2), /skipped 3 bad item\(s\).*and 1 more/);

  const j = join(d, 'data.jsonl');
  writeFileSync(j, '{"image":"a.png","caption":"one"}\n{"image": "b.png", "caption": \n{"image":"c.png"}\n');
  assert.throws(
    () => pairs(`jsonl:${j}`),
    (e: unknown) => e instanceof DataError && e.message.startsWith(`${j}:2: malformed JSON`),
  );
  const jb = openDataset(`jsonl:${j}`, { skipBad: true });
  assert.equal(jb.dataset.size, 1);
  assert.deepEqual(
    jb.bad.items.map((b) => b.ref),
    [`${j}:2`, `${j}:3`],
  );
});

test('jsonl reader: caption and captions, custom keys', async () => {
  const d = await imagesDir('jsonl');
  const f = join(d, 'data.jsonl');
  writeFileSync(
    f,
    [
      '{"image":"a.png","caption":"one"}',
      '',
      '{"image":"b.png","captions":["two","deux"]}',
      '{"image":"a.png","caption":"uno"}',
    ].join('\n'),
  );
  const ds = pairs(`jsonl:${f}`);
  assert.deepEqual(captionsOf(ds), [
    ['one', 'uno'],
    ['two', 'deux'],
  ]);
  const g = join(d, 'custom.jsonl');
  writeFileSync(g, '{"path":"c.png","text":["three"]}\n');
  assert.deepEqual(captionsOf(pairs(`jsonl:${g}`, { imageKey: 'path', captionKey: 'text' })), [['three']]);
});

test('coco reader: Karpathy JSON with several sentences, split filter, entry-named errors', async () => {
  const d = await imagesDir('coco');
  const f = join(d, 'karpathy.json');
  const img = (filename: string, split: string, sents: string[], filepath?: string) => ({
    filepath,
    filename,
    split,
    sentences: sents.map((raw) => ({ raw, tokens: raw.split(' ') })),
  });
  writeFileSync(
    f,
    JSON.stringify({
      dataset: 'coco',
      images: [
        img('a.png', 'test', ['a one', 'a two', 'a three']),
        img('b.png', 'train', ['b one']),
        img('d.png', 'test', ['d one', 'd two'], 'sub'),
        img('c.png', 'restval', ['c']),
      ],
    }),
  );
  assert.equal(pairs(`coco:${f}`).size, 4);
  const test_ = pairs(`coco:${f}:test`);
  assert.deepEqual(captionsOf(test_), [
    ['a one', 'a two', 'a three'],
    ['d one', 'd two'],
  ]);
  assert.equal(test_.get(1).ref, `${f}: images[2]`);
  assert.deepEqual(captionsOf(pairs(`coco:${f}:train+restval`)), [['b one'], ['c']]);
  assert.throws(
    () => pairs(`coco:${f}:val`),
    /no usable images in split "val"; the file has splits restval, test, train/,
  );
  writeFileSync(f, JSON.stringify({ images: [img('a.png', 'test', ['x']), img('nope.png', 'test', ['y'])] }));
  clearExistsCache();
  assert.throws(
    () => pairs(`coco:${f}`),
    (e: unknown) =>
      e instanceof DataError && e.message.startsWith(`${f}: images[1]:`) && e.message.includes('nope.png'),
  );
});

test('folder reader: class names from folders or a classnames file; mismatch and empty-class errors', async () => {
  const d = join(root, 'folder');
  for (const c of ['golden_retriever', 'cat', 'empty_one']) mkdirSync(join(d, c), { recursive: true });
  await png(join(d, 'cat', 'x.png'), 1);
  await png(join(d, 'cat', 'y.png'), 2);
  await png(join(d, 'golden_retriever', 'z.png'), 3);
  writeFileSync(join(d, 'cat', 'notes.txt'), 'not an image');
  assert.throws(
    () => openDataset(`folder:${d}`),
    (e: unknown) =>
      e instanceof DataError && e.message.startsWith(join(d, 'empty_one')) && /empty class folder/.test(e.message),
  );
  const { dataset, bad } = openDataset(`folder:${d}`, { skipBad: true });
  const ds = dataset as ClassificationDataset;
  assert.equal(bad.count, 1);
  assert.deepEqual(ds.classnames, ['cat', 'empty one', 'golden retriever']);
  assert.deepEqual(
    Array.from({ length: ds.size }, (_, i) => ds.get(i).label),
    [0, 0, 2],
  );
  await png(join(d, 'empty_one', 'w.png'), 4);
  const names = join(root, 'names.txt');
  writeFileSync(names, 'tabby cat\nthing\ngolden retriever dog\n');
  assert.deepEqual((openDataset(`folder:${d}`, { classnames: names }).dataset as ClassificationDataset).classnames, [
    'tabby cat',
    'thing',
    'golden retriever dog',
  ]);
  writeFileSync(names, 'tabby cat\ngolden retriever dog\n');
  assert.throws(
    () => openDataset(`folder:${d}`, { classnames: names }),
    (e: unknown) =>
      e instanceof DataError &&
      e.message.startsWith(names) &&
      /has 2 class names but .* has 3 class folders/.test(e.message),
  );
});

test('--limit/--seed: deterministic subsets in source order', () => {
  const a = subsetIndices(100, 10, 3);
  assert.deepEqual(a, subsetIndices(100, 10, 3));
  assert.equal(new Set(a).size, 10);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.notDeepEqual(a, subsetIndices(100, 10, 4));
  assert.deepEqual(subsetIndices(5, 10, 1), [0, 1, 2, 3, 4]);
  assert.deepEqual(subsetIndices(5, undefined, 1), [0, 1, 2, 3, 4]);
  assert.deepEqual(
    subsetIndices(100, 5, 3),
    subsetIndices(100, 10, 3)
      .filter((i) => subsetIndices(100, 5, 3).includes(i))
      .slice(0, 5),
  );
});

test('builtin fashion-mnist: 70,000 images, 10 classes, disjoint 80/10/10 splits by source index', () => {
  const refs = { train: fashionSplitRefs('train'), val: fashionSplitRefs('val'), test: fashionSplitRefs('test') };
  assert.deepEqual([refs.train.length, refs.val.length, refs.test.length], [56000, 7000, 7000]);
  const key = (r: { label: number; index: number }) => r.label * 100000 + r.index;
  const sets = Object.values(refs).map((rs) => new Set(rs.map(key)));
  assert.equal(new Set([...sets[0], ...sets[1], ...sets[2]]).size, 70000);
  assert.deepEqual(splitRange(7000, 'val'), [5600, 6300]);
  const { dataset } = openDataset('builtin:fashion-mnist:val', { limit: 50, seed: 1 });
  const ds = dataset as ClassificationDataset;
  assert.deepEqual(ds.classnames, [...FASHION_CLASSNAMES]);
  assert.equal(ds.size, 50);
  const again = openDataset('builtin:fashion-mnist:val', { limit: 50, seed: 1 }).dataset as ClassificationDataset;
  for (let i = 0; i < 50; i += 7) {
    const x = ds.get(i),
      y = again.get(i);
    assert.equal(x.label, y.label);
    assert.deepEqual(x.image, y.image);
    assert.ok(x.image.kind === 'rgb' && x.image.width === 28 && x.image.data.length === 28 * 28 * 3);
  }
});

test('builtin fashion-scenes: deterministic layouts and captions, disjoint source images across splits', () => {
  assert.deepEqual(SCENE_COUNTS, { train: 20000, val: 1000, test: 1000 });
  const a = sceneLayout('test', 17),
    b = sceneLayout('test', 17);
  assert.deepEqual(a, b);
  assert.deepEqual(renderScene(a), renderScene(b));
  assert.match(
    a.caption,
    /^a (large|small) (bright|dark) [a-z -]+ in the (top left|top right|bottom left|bottom right|centre)/,
  );
  const sources = (split: 'train' | 'val' | 'test', n: number) => {
    const s = new Set<number>();
    let objects = 0;
    for (let i = 0; i < n; i++) {
      const l = sceneLayout(split, i);
      assert.ok(l.objects.length >= 1 && l.objects.length <= 3);
      assert.equal(new Set(l.objects.map((o) => o.position)).size, l.objects.length);
      for (const o of l.objects) {
        const [lo, hi] = splitRange(7000, split);
        assert.ok(o.index >= lo && o.index < hi);
        s.add(o.label * 100000 + o.index);
        objects++;
      }
    }
    return { s, objects };
  };
  const tr = sources('train', 3000).s,
    va = sources('val', 1000).s,
    te = sources('test', 1000).s;
  for (const x of va) assert.ok(!tr.has(x) && !te.has(x));
  for (const x of te) assert.ok(!tr.has(x));
  const ds = pairs('builtin:fashion-scenes:test');
  assert.equal(ds.size, 1000);
  const it = ds.get(17);
  assert.deepEqual(it.captions, [a.caption]);
  assert.ok(
    it.image.kind === 'rgb' && it.image.width === SCENE_SIZE && it.image.data.length === SCENE_SIZE * SCENE_SIZE * 3,
  );
  // A dark item is dimmer than the same kind of bright one: pixel maxima follow brightness.
  const two = [...Array(200).keys()].map((i) => sceneLayout('val', i)).find((l) => l.objects.length === 1)!;
  const img = renderScene(two);
  const max = img.reduce((m, v) => Math.max(m, v), 0);
  assert.ok(two.objects[0].brightness === 'dark' ? max <= 103 : max > 103);
});

test('loader: batches in order with workers and in-process alike, bad images named or skipped', async () => {
  const d = await imagesDir('loader');
  writeFileSync(join(d, 'broken.png'), 'not a png');
  const f = join(d, 'data.csv');
  writeFileSync(f, 'filepath,title\na.png,a\nb.png,b\nbroken.png,x\nc.png,c\nsub/d.png,d\n');
  const cfg = defaultPreprocessorConfig(16);
  const { dataset } = openDataset(`csv:${f}`);
  const want = await Promise.all(['a.png', 'b.png', 'c.png', 'sub/d.png'].map((p) => preprocessImage(join(d, p), cfg)));
  for (const workers of [0, 2]) {
    await assert.rejects(
      async () => {
        for await (const _ of imageBatches(dataset, {
          batch: 2,
          preprocess: cfg,
          imageSize: 16,
          workers,
          bad: new BadItemLog(false),
        }))
          void _;
      },
      (e: unknown) => e instanceof DataError && e.message.startsWith(`${f}:4:`) && e.message.includes('broken.png'),
    );
    const bad = new BadItemLog(true);
    const progress = new Progress(5, 'images', process.stderr, { enabled: false });
    const got: number[] = [];
    const px: Float32Array[] = [];
    for await (const b of imageBatches(dataset, { batch: 2, preprocess: cfg, imageSize: 16, workers, bad, progress })) {
      got.push(...b.indices);
      assert.equal(b.pixels.length, b.indices.length * 3 * 16 * 16);
      for (let k = 0; k < b.indices.length; k++) px.push(b.pixels.slice(k * 768, (k + 1) * 768));
    }
    assert.deepEqual(got, [0, 1, 3, 4]);
    assert.equal(bad.count, 1);
    px.forEach((p, k) => assert.deepEqual(p, want[k]));
  }
  const bar = new Progress(200, 'images', process.stderr, { enabled: false });
  bar.tick(50);
  assert.match(bar.line(), /^images \[#####-+\] 50\/200 [\d.]+\/s ETA /);
});

test(
  'loader: bounded prefetch — with a slow consumer, items are requested at most `prefetch` batches ahead of the ' +
    'batch being consumed, and that far ahead (in-process: prefetch 1, 3 and the default 2; 2 workers: prefetch 3)',
  async () => {
    const B = 2,
      N = 20,
      batches = N / B;
    const rgb = new Uint8Array(8 * 8 * 3).fill(128);
    let highest = -1;
    // An in-memory data set that records the highest index the loader has asked for.
    const ds: PairsDataset = {
      kind: 'pairs',
      spec: 'memory',
      size: N,
      get: (i) => {
        highest = Math.max(highest, i);
        return { image: { kind: 'rgb', data: rgb, width: 8, height: 8 }, captions: [`item ${i}`], ref: `memory[${i}]` };
      },
    };
    const cfg = defaultPreprocessorConfig(8);
    // Each pool of decode threads takes seconds to start under load, so one case with workers.
    const cases: Array<[number, number | undefined]> = [
      [0, 1],
      [0, 3],
      [0, undefined],
      [2, 3],
    ];
    for (const [workers, prefetch] of cases) {
      const bound = prefetch ?? 2;
      highest = -1;
      let k = 0,
        maxAhead = 0;
      for await (const b of imageBatches(ds, { batch: B, preprocess: cfg, imageSize: 8, workers, prefetch })) {
        assert.deepEqual(b.indices, [k * B, k * B + 1]);
        // Consume slowly, so that the loader has every chance to run further ahead, then look at what it asked for.
        for (let wait = 0; wait < 3; wait++) {
          await new Promise((r) => setTimeout(r, 5));
          const ahead = Math.floor(highest / B) - k;
          assert.ok(
            ahead <= bound,
            `workers ${workers} prefetch ${prefetch}: at batch ${k} the loader asked for ` +
              `item ${highest} (batch ${k + ahead}), more than ${bound} batches ahead`,
          );
          maxAhead = Math.max(maxAhead, ahead);
        }
        k++;
      }
      assert.equal(k, batches);
      assert.equal(maxAhead, bound, `workers ${workers} prefetch ${prefetch}: never ran ${bound} batches ahead`);
    }
  },
);

test('export: PNGs + CSV that load back with the same captions; classification folders; refuses non-empty', async () => {
  const out = join(root, 'export-scenes');
  const r = await exportDataset('builtin:fashion-scenes:val', out, { limit: 12, seed: 5, progress: false });
  assert.equal(r.images, 12);
  const src = pairs('builtin:fashion-scenes:val', { limit: 12, seed: 5 });
  const back = pairs(`csv:${r.csv}`);
  assert.deepEqual(captionsOf(back), captionsOf(src));
  const first = back.get(0).image;
  assert.ok(first.kind === 'file');
  const dec = await decodeImage(first.path);
  const orig = src.get(0).image;
  assert.ok(orig.kind === 'rgb');
  assert.deepEqual([dec.width, dec.height], [96, 96]);
  assert.deepEqual(dec.data, orig.data);
  await assert.rejects(exportDataset('builtin:fashion-scenes:val', out, { limit: 2, progress: false }), /not empty/);

  // Classification: folder per class (label-prefixed) + classnames.txt → folder: gives back labels and names.
  const outC = join(root, 'export-fmnist');
  const rc = await exportDataset('builtin:fashion-mnist:test', outC, { limit: 30, seed: 2, progress: false });
  assert.equal(rc.kind, 'classification');
  const srcC = openDataset('builtin:fashion-mnist:test', { limit: 30, seed: 2 }).dataset as ClassificationDataset;
  const backC = openDataset(`folder:${outC}`, { classnames: join(outC, 'classnames.txt') })
    .dataset as ClassificationDataset;
  assert.deepEqual(backC.classnames, srcC.classnames);
  const labels = (ds: ClassificationDataset) => Array.from({ length: ds.size }, (_, i) => ds.get(i).label).sort();
  assert.deepEqual(labels(backC), labels(srcC));
  assert.equal(readFileSync(rc.csv, 'utf8').split('\n')[0], 'filepath,label,classname');
  // A builtin image and its exported PNG preprocess identically.
  const cfg = defaultPreprocessorConfig(32);
  const img0 = srcC.get(0);
  assert.ok(img0.image.kind === 'rgb');
  const line1 = readFileSync(rc.csv, 'utf8').split('\n')[1].split(',')[0];
  assert.deepEqual(await preprocessImage(join(outC, line1), cfg), preprocessRgb(img0.image.data, 28, 28, cfg));
});

test('embedding cache: key from parts, write then hit, damaged entry is a miss', async () => {
  const dir = join(root, 'cache');
  const k1 = cacheKey({ tower: 'image', model: 'abc', data: 'x', preprocess: { a: 1, b: [1, 2] } });
  assert.equal(k1, cacheKey({ preprocess: { b: [1, 2], a: 1 }, data: 'x', model: 'abc', tower: 'image' }));
  assert.notEqual(k1, cacheKey({ tower: 'image', model: 'abd', data: 'x', preprocess: { a: 1, b: [1, 2] } }));
  let calls = 0;
  const compute = async () => {
    calls++;
    return { data: Float32Array.from([1, 2, 3, 4, 5, 6]), rows: 2, dim: 3, indices: [0, 2] };
  };
  const a = await cachedEmbeddings(dir, k1, compute);
  const b = await cachedEmbeddings(dir, k1, compute);
  assert.equal(calls, 1);
  assert.deepEqual([a.hit, b.hit], [false, true]);
  assert.deepEqual(b.data, Float32Array.from([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(b.indices, [0, 2]);
  writeFileSync(join(dir, `${k1}.bin`), Buffer.alloc(5));
  assert.equal(readCache(dir, k1), null);
});

test('defaultDecodeWorkers: no worker takes a core from the compute threads', () => {
  // without the compute threads: 1 up to 4 CPUs, then a quarter (max 4)
  assert.deepEqual(
    [1, 2, 4, 8, 16, 64].map((c) => defaultDecodeWorkers(c)),
    [1, 1, 1, 2, 4, 4],
  );
  // compute threads on every CPU of a small machine → decode between forwards; free CPUs bound the workers
  assert.equal(defaultDecodeWorkers(2, 2), 0);
  assert.equal(defaultDecodeWorkers(4, 4), 0);
  assert.equal(defaultDecodeWorkers(2, 1), 1);
  assert.equal(defaultDecodeWorkers(4, 8), 0, 'more compute threads than CPUs');
  assert.equal(defaultDecodeWorkers(16, 14), 2);
  assert.equal(defaultDecodeWorkers(16, 8), 4);
  // more than 4 CPUs, all taken by compute threads: the workers fill the forward's single-threaded stretches
  assert.equal(defaultDecodeWorkers(16, 16), 4);
  assert.equal(defaultDecodeWorkers(8, 8), 2);
});
