// Data files are streamed: the incremental csv parser, the line reader and the streamed JSON reader give the same
// result for every chunk size as parsing the whole text, refuse what is malformed with the file named, and read a
// huge file only as far as its first bad record (a 4 GiB sparse file is refused at its 11th line, in bounded memory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../src/errors.ts';
import { DelimitedParser, parseDelimited, type CsvRecord } from '../src/data/readers/csv.ts';
import { readLines, readTextChunks } from '../src/io/read-stream.ts';
import { JsonObjectStream } from '../src/io/json-stream.ts';
import { openDataset } from '../src/data/spec.ts';
import type { PairsDataset } from '../src/data/dataset.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

const root = makeTempDir('mope-stream-');
test.after(() => removeDir(root));

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

const CSV = 'filepath,title\r\n"a, b.png","say ""hi"""\r\n\r\n"multi\nline.png",z\nc.png,"x"\r\n"q.png",""""\n';

test('the incremental csv parser equals the whole-text parse for every chunk size', () => {
  const whole = parseDelimited(CSV, ',', 'f.csv');
  assert.deepEqual(
    whole.map((r) => r.fields),
    [
      ['filepath', 'title'],
      ['a, b.png', 'say "hi"'],
      ['multi\nline.png', 'z'],
      ['c.png', 'x'],
      ['q.png', '"'],
    ],
  );
  assert.deepEqual(
    whole.map((r) => r.line),
    [1, 2, 4, 6, 7],
  );
  for (let size = 1; size <= CSV.length; size++) {
    const got: CsvRecord[] = [];
    const p = new DelimitedParser(',', 'f.csv', (r) => got.push(r));
    for (const c of chunks(CSV, size)) p.push(c);
    p.end();
    assert.deepEqual(got, whole, `chunk size ${size}`);
  }
  // A quote closed at the very end of the text ends the record.
  assert.deepEqual(parseDelimited('a,"b"', ',', 'f.csv')[0].fields, ['a', 'b']);
  assert.throws(() => parseDelimited('a,"b"x\n', ',', 'f.csv'), /f\.csv:1: unexpected character after a closing quote/);
});

test('readTextChunks and readLines decode UTF-8 split across chunks, drop the BOM, and number lines', () => {
  const f = join(root, 'lines.txt');
  const text = '\ufeffé一\r\n\n𝄞 end\nlast';
  writeFileSync(f, text);
  for (const size of [1, 2, 3, 5, 64]) {
    assert.equal([...readTextChunks(f, 'data file', 1e6, DataError, size)].join(''), text.slice(1));
    assert.deepEqual(
      [...readLines(f, 'data file', 1e6, DataError, size)],
      [
        { text: 'é一', line: 1 },
        { text: '', line: 2 },
        { text: '𝄞 end', line: 3 },
        { text: 'last', line: 4 },
      ],
    );
  }
});

const COCO = {
  dataset: 'coco',
  images: [
    { filename: 'a.jpg', split: 'test', sentences: [{ raw: 'a "quoted" cat, {brace} [x]' }, { raw: 'b\\c' }] },
    { filepath: 'val2014', filename: 'b.jpg', split: 'val', sentences: [{ tokens: ['two', 'dogs'] }] },
  ],
  info: { nested: [1, [2, { x: null }]], t: true },
};

function streamJson(text: string, size: number): { items: unknown[]; others: [string, unknown][]; saw: boolean } {
  const items: unknown[] = [];
  const others: [string, unknown][] = [];
  const s = new JsonObjectStream('c.json', 'images', 'a COCO file', {
    item: (v, k) => {
      assert.equal(k, items.length);
      items.push(v);
    },
    other: (k, v) => others.push([k, v]),
  });
  for (const c of chunks(text, size)) s.push(c);
  const saw = s.end();
  return { items, others, saw };
}

test('the streamed JSON reader hands over every images[] element and other key, for every chunk size', () => {
  for (const text of [JSON.stringify(COCO), JSON.stringify(COCO, null, 2)]) {
    for (let size = 1; size <= 41; size++) {
      const r = streamJson(text, size);
      assert.deepEqual(r.items, COCO.images, `chunk size ${size}`);
      assert.deepEqual(r.others, [
        ['dataset', 'coco'],
        ['info', COCO.info],
      ]);
      assert.equal(r.saw, true);
    }
  }
  assert.deepEqual(streamJson('{"images": [ ] , "n": -1.5e3}', 3), { items: [], others: [['n', -1500]], saw: true });
  assert.equal(streamJson('{}', 1).saw, false);
});

test('the streamed JSON reader refuses malformed documents, naming the file', () => {
  const bad: [string, RegExp][] = [
    ['', /c\.json: the file is empty/],
    ['[1, 2]', /c\.json: expected a COCO file; found an array at the top level/],
    ['{"images": [{"a": 1}', /c\.json: not valid JSON: found the end of the file/],
    ['{"images": [{"a": 1},]}', /c\.json: images\[1\] is not valid JSON/],
    ['{"images": [{"a": 1}] "x": 2}', /c\.json: not valid JSON: found """ where "," or "}" after a value/],
    ['{"images": []} x', /nothing more after the closing/],
    ['{images: []}', /found "i" where a key in double quotes was expected/],
    ['{"images" []}', /":" after the key "images"/],
    ['{"images": [{"a": tru}]}', /images\[0\] is not valid JSON/],
    [`{"images": [${'['.repeat(1200)}${']'.repeat(1200)}]}`, /images\[0\] is nested more than 1000 levels deep/],
    [`{"images": ["${'x'.repeat(1024 * 1024 + 10)}"]}`, /images\[0\] is longer than 1 MiB characters of JSON/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => streamJson(text, 7),
      (e: unknown) => e instanceof DataError && re.test(e.message),
      text.slice(0, 40),
    );
  }
});

test('coco, jsonl and csv data files read through the streams give the same items', () => {
  const dir = join(root, 'same');
  const coco = join(root, 'c.json');
  writeFileSync(coco, JSON.stringify(COCO));
  const ds = openDataset(`coco:${coco}`, { checkFiles: false, imageRoot: dir }).dataset as PairsDataset;
  assert.equal(ds.size, 2);
  assert.deepEqual(ds.get(0).captions, ['a "quoted" cat, {brace} [x]', 'b\\c']);
  assert.deepEqual(ds.get(1).captions, ['two dogs']);
  const val = openDataset(`coco:${coco}:val`, { checkFiles: false, imageRoot: dir }).dataset as PairsDataset;
  assert.equal(val.size, 1);
  writeFileSync(coco, '{"images": {"a": 1}}');
  assert.throws(
    () => openDataset(`coco:${coco}`, { checkFiles: false }),
    /c\.json: "images" must be an array of image entries; found object/,
  );
  writeFileSync(coco, '{"annotations": []}');
  assert.throws(() => openDataset(`coco:${coco}`, { checkFiles: false }), /the object has no "images" key/);

  // 20,000 rows: several 1 MiB chunks, records crossing chunk boundaries.
  const n = 20_000;
  const caption = (i: number) => `caption number ${i}, ${'x'.repeat(i % 97)} with "quotes" and é`;
  const csv = join(root, 'big.csv');
  const jsonl = join(root, 'big.jsonl');
  const rows = ['filepath,title'];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    rows.push(`img${i}.png,"${caption(i).replaceAll('"', '""')}"`);
    lines.push(JSON.stringify({ image: `img${i}.png`, caption: caption(i) }));
  }
  writeFileSync(csv, rows.join('\r\n'));
  writeFileSync(jsonl, lines.join('\n') + '\n');
  for (const spec of [`csv:${csv}`, `jsonl:${jsonl}`]) {
    const d = openDataset(spec, { checkFiles: false }).dataset as PairsDataset;
    assert.equal(d.size, n, spec);
    for (const i of [0, 1, 4321, n - 1]) assert.deepEqual(d.get(i).captions, [caption(i)], `${spec} item ${i}`);
  }
});

test('a 4 GiB sparse data file is refused at its first overlong line, without reading it whole', () => {
  for (const kind of ['jsonl', 'csv', 'coco'] as const) {
    const f = join(root, `sparse.${kind}`);
    const fd = openSync(f, 'w');
    const head =
      kind === 'jsonl'
        ? Array.from({ length: 10 }, (_, i) => JSON.stringify({ image: `${i}.png`, caption: `c ${i}` }) + '\n').join('')
        : kind === 'csv'
          ? 'filepath,title\n' + Array.from({ length: 9 }, (_, i) => `${i}.png,c ${i}\n`).join('')
          : '{"images": [';
    writeSync(fd, head);
    ftruncateSync(fd, 4 * 1024 ** 3); // the rest is a hole of NUL bytes: no line end, no JSON
    closeSync(fd);
    const before = process.memoryUsage().rss;
    const t0 = Date.now();
    const re =
      kind === 'coco'
        ? /sparse\.coco: images\[0\] is longer than 1 MiB characters of JSON/
        : new RegExp(`sparse\\.${kind}:11: a (line|record) longer than 1 MiB characters`);
    assert.throws(
      () => openDataset(`${kind}:${f}`, { checkFiles: false }),
      (e: unknown) => e instanceof DataError && re.test(e.message),
    );
    assert.ok(Date.now() - t0 < 10_000, `${kind}: refused within seconds`);
    assert.ok(process.memoryUsage().rss - before < 256 * 1024 ** 2, `${kind}: memory grew by less than 256 MiB`);
  }
});
