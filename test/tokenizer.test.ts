// Tests for the CLIP BPE tokenizer: reference vectors, golden vectors from tools/tokenizer_vectors.py, file round trips, errors.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CheckpointError, ConfigError, DataError } from '../src/errors.ts';
import { ClipTokenizer, cleanText, htmlUnescape, loadTokenizerFromFolder } from '../src/io/tokenizer.ts';
import {
  tokenizerConfigJson,
  tokenizerJson,
  writeTokenizerFolder,
  writeVocabMerges,
} from '../src/io/tokenizer-files.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

const tok = ClipTokenizer.fromBundledVocab();
const golden = JSON.parse(readFileSync(new URL('./golden/tokenizer_vectors.json', import.meta.url), 'utf8')) as {
  vectors: Array<{ text: string; ids: number[] }>;
};
const scratch = makeTempDir('mope-tokenizer-');
after(() => removeDir(scratch));
let n = 0;
const freshDir = () => {
  const d = join(scratch, `case${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const BRIEF: Array<[string, number[]]> = [
  ['a photo of a cat', [49406, 320, 1125, 539, 320, 2368, 49407]],
  ['A Photo of a DOG!!', [49406, 320, 1125, 539, 320, 1929, 748, 49407]],
  ['an ankle boot.', [49406, 550, 14777, 8087, 269, 49407]],
  ['itap of a {}.', [49406, 529, 2728, 539, 320, 90, 92, 269, 49407]],
  ['Hello, World!', [49406, 3306, 267, 1002, 256, 49407]],
  ['a diagram', [49406, 320, 22697, 49407]],
  ["it's 2024 — naïve café", [49406, 585, 568, 273, 271, 273, 275, 2005, 1097, 35689, 563, 15304, 49407]],
];

describe('bundled vocabulary', () => {
  test('has the layout of the OpenAI bpe_simple_vocab: 256 bytes, 256 end-of-word bytes, merges, 2 specials', () => {
    assert.equal(tok.vocabSize, 49408);
    assert.equal(tok.merges.length, 48894);
    assert.equal(tok.bosId, 49406);
    assert.equal(tok.eosId, 49407);
    assert.equal(tok.contextLength, 77);
    assert.equal(tok.idToToken(0), '!');
    assert.equal(tok.idToToken(1), '"');
    assert.equal(tok.idToToken(256), '!</w>');
    assert.equal(tok.idToToken(512), 'in');
    assert.equal(tok.idToToken(513), 'th');
    assert.equal(tok.idToToken(49405), 'jekyll</w>');
    assert.equal(tok.idToToken(49406), '<|startoftext|>');
    assert.equal(tok.idToToken(49407), '<|endoftext|>');
    assert.deepEqual(tok.merges[48893], ['jeky', 'll</w>']);
  });
});

describe('encode', () => {
  for (const [text, ids] of BRIEF) {
    test(`reference vector ${JSON.stringify(text)}`, () => assert.deepEqual(tok.encode(text), ids));
  }

  test(`all ${golden.vectors.length} golden vectors from tools/tokenizer_vectors.py`, () => {
    assert.ok(golden.vectors.length >= 50);
    for (const { text, ids } of golden.vectors) assert.deepEqual(tok.encode(text), ids, `text ${JSON.stringify(text)}`);
  });

  test('a tiny cache gives the same ids (cache eviction is harmless)', () => {
    const small = new ClipTokenizer(
      { encoder: new Map(tok.vocabEntries()), merges: [...tok.merges] as Array<[string, string]> },
      { cacheSize: 2 },
    );
    for (const { text, ids } of golden.vectors) assert.deepEqual(small.encode(text), ids);
  });

  test('truncation keeps EOS at position 76 with length 77', () => {
    const long = 'word '.repeat(200);
    const ids = tok.encode(long);
    assert.equal(ids.length, 77);
    assert.equal(ids[0], 49406);
    assert.equal(ids[76], 49407);
    const full = tok.encode(long, { contextLength: 1000 });
    assert.equal(full.length, 202);
    assert.deepEqual(ids.slice(0, 76), full.slice(0, 76));
    assert.equal(tok.encode('a photo of a cat', { contextLength: 4 }).join(' '), '49406 320 1125 49407');
  });

  test('truncate: false throws a DataError naming the limit', () => {
    assert.throws(
      () => tok.encode('word '.repeat(80), { truncate: false }),
      (e: unknown) => e instanceof DataError && /75/.test(e.message),
    );
    assert.equal(tok.encode('word '.repeat(75), { truncate: false }).length, 77);
  });

  test('empty and whitespace-only text give BOS EOS', () => {
    assert.deepEqual(tok.encode(''), [49406, 49407]);
    assert.deepEqual(tok.encode(' \t\n '), [49406, 49407]);
  });

  test('bad context length is a ConfigError', () => {
    assert.throws(() => tok.encode('x', { contextLength: 1 }), ConfigError);
    assert.throws(() => ClipTokenizer.fromBundledVocab({ contextLength: 2.5 }), ConfigError);
  });

  test('encodeBatch and encodeBatchPadded', () => {
    const texts = ['a photo of a cat', 'a diagram', ''];
    assert.deepEqual(
      tok.encodeBatch(texts),
      texts.map((t) => tok.encode(t)),
    );
    const p = tok.encodeBatchPadded(texts);
    assert.equal(p.B, 3);
    assert.equal(p.T, 77);
    assert.equal(p.ids.length, 3 * 77);
    assert.deepEqual([...p.ids.subarray(0, 8)], [49406, 320, 1125, 539, 320, 2368, 49407, 49407]);
    assert.deepEqual([...p.eosIndex], [6, 3, 1]);
    assert.deepEqual([...p.attentionMask.subarray(77, 77 + 5)], [1, 1, 1, 1, 0]);
    const z = tok.encodeBatchPadded(['a diagram'], { padId: 0, contextLength: 6 });
    assert.deepEqual([...z.ids], [49406, 320, 22697, 49407, 0, 0]);
  });
});

describe('text cleaning', () => {
  test('html unescape follows Python html.unescape', () => {
    assert.equal(htmlUnescape('fish &amp; chips'), 'fish & chips');
    assert.equal(
      htmlUnescape('&ampfoo; &AMP &copy &#x80; &#0; &#65;&#x42; &unknown;'),
      '&foo; & © € \ufffd AB &unknown;',
    );
    assert.equal(htmlUnescape('&#xD800; &#1114112; &#1;x'), '\ufffd \ufffd x');
    assert.equal(htmlUnescape(htmlUnescape('&amp;amp;lt;')), '&lt;');
  });

  test('NFC, double unescape, whitespace collapse, strip, lowercase', () => {
    assert.equal(cleanText('  Cafe\u0301 &amp;amp;\t\tNEW\n\nline\u00a0 '), 'café & new line');
    assert.equal(cleanText('\u001c\u0085x\ufeff'), 'x\ufeff'); // Python str.isspace, not JS \s
  });
});

describe('decode', () => {
  test('decode(encode(x)) returns plain lowercase text', () => {
    for (const x of [
      'a photo of a cat',
      'the quick brown fox jumps over the lazy dog',
      'an ankle boot',
      'zürich café',
    ]) {
      assert.equal(tok.decode(tok.encode(x)), x);
    }
  });

  test('specials are dropped unless asked for; bad ids are a DataError', () => {
    assert.equal(tok.decode([49406, 320, 2368, 49407]), 'a cat');
    assert.equal(
      tok.decode([49406, 320, 2368, 49407], { skipSpecialTokens: false }),
      '<|startoftext|>a cat <|endoftext|>',
    );
    assert.equal(tok.decode(Int32Array.from([320, 1929, 748])), 'a dog !!');
    assert.throws(
      () => tok.decode([320, 49408]),
      (e: unknown) => e instanceof DataError && /49408/.test(e.message) && /position 1/.test(e.message),
    );
  });
});

describe('files', () => {
  const texts = golden.vectors.map((v) => v.text);

  test('vocab.json + merges.txt round trip gives identical ids', () => {
    const dir = freshDir();
    const written = writeVocabMerges(tok, dir);
    assert.deepEqual(written, [join(dir, 'vocab.json'), join(dir, 'merges.txt')]);
    const merges = readFileSync(join(dir, 'merges.txt'), 'utf8');
    assert.ok(merges.startsWith('#version: 0.2\ni n\nt h\n'));
    const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'));
    assert.equal(Object.keys(vocab).length, 49408);
    assert.equal(vocab['<|endoftext|>'], 49407);
    const back = ClipTokenizer.fromVocabMerges(join(dir, 'vocab.json'), join(dir, 'merges.txt'));
    assert.equal(back.vocabSize, 49408);
    for (const t of texts) assert.deepEqual(back.encode(t), tok.encode(t));
  });

  test('tokenizer.json round trip, merges as strings and as [a, b] arrays', () => {
    const obj = tokenizerJson(tok) as any;
    assert.equal(obj.model.type, 'BPE');
    assert.equal(obj.model.end_of_word_suffix, '</w>');
    assert.equal(obj.model.unk_token, '<|endoftext|>');
    assert.equal(obj.model.merges[0], 'i n');
    assert.deepEqual(
      obj.normalizer.normalizers.map((x: any) => x.type),
      ['NFC', 'Replace', 'Lowercase'],
    );
    assert.deepEqual(
      obj.pre_tokenizer.pretokenizers.map((x: any) => x.type),
      ['Split', 'ByteLevel'],
    );
    assert.equal(obj.pre_tokenizer.pretokenizers[0].behavior, 'Removed');
    assert.equal(obj.pre_tokenizer.pretokenizers[0].invert, true);
    assert.deepEqual(obj.post_processor.cls, ['<|startoftext|>', 49406]);
    assert.deepEqual(obj.post_processor.sep, ['<|endoftext|>', 49407]);
    assert.equal(obj.decoder.type, 'ByteLevel');
    assert.deepEqual(
      obj.added_tokens.map((t: any) => t.id),
      [49406, 49407],
    );
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), JSON.stringify(obj));
    obj.model.merges = obj.model.merges.map((m: string) => m.split(' '));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(obj));
    for (const f of ['a.json', 'b.json']) {
      const back = ClipTokenizer.fromTokenizerJson(join(dir, f));
      assert.equal(back.vocabSize, 49408);
      for (const t of texts) assert.deepEqual(back.encode(t), tok.encode(t), `${f}: ${JSON.stringify(t)}`);
    }
  });

  test('folder: tokenizer.json preferred, then vocab.json + merges.txt; tokenizer_config sets the context length', () => {
    const dir = freshDir();
    const written = writeTokenizerFolder(tok, dir);
    assert.equal(written.length, 5);
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.deepEqual(cfg, tokenizerConfigJson());
    assert.equal(cfg.tokenizer_class, 'CLIPTokenizer');
    assert.equal(cfg.model_max_length, 77);
    assert.equal(cfg.pad_token, '<|endoftext|>');
    writeFileSync(join(dir, 'vocab.json'), '{broken'); // proves tokenizer.json is read first
    assert.deepEqual(loadTokenizerFromFolder(dir).encode('a photo of a cat'), BRIEF[0][1]);

    const slow = freshDir();
    writeVocabMerges(tok, slow);
    writeFileSync(join(slow, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 16 }));
    const t16 = loadTokenizerFromFolder(slow);
    assert.equal(t16.contextLength, 16);
    assert.equal(t16.encode('word '.repeat(40)).length, 16);
    assert.equal(loadTokenizerFromFolder(slow, { contextLength: 40 }).contextLength, 40);
    assert.equal(loadTokenizerFromFolder(slow, { maxPositions: 8 }).contextLength, 8);
    assert.throws(() => loadTokenizerFromFolder(slow, { contextLength: 100 }), ConfigError);
    writeFileSync(join(slow, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    assert.equal(loadTokenizerFromFolder(slow).contextLength, 77);
  });

  test('missing files: CheckpointError naming the folder and the files looked for', () => {
    const dir = freshDir();
    const check = (e: unknown) =>
      e instanceof CheckpointError &&
      e.message.includes(dir) &&
      /tokenizer\.json/.test(e.message) &&
      /vocab\.json/.test(e.message) &&
      /merges\.txt/.test(e.message);
    assert.throws(() => loadTokenizerFromFolder(dir), check);
    writeVocabMerges(tok, dir);
    rmSync(join(dir, 'merges.txt'));
    assert.throws(
      () => loadTokenizerFromFolder(dir),
      (e: unknown) => check(e) && /missing: merges\.txt/.test((e as Error).message),
    );
  });

  test('corrupt files: CheckpointError naming the file and what was expected', () => {
    const dir = freshDir();
    writeVocabMerges(tok, dir);
    const vocab = join(dir, 'vocab.json');
    const merges = join(dir, 'merges.txt');
    writeFileSync(vocab, '{"a": 0, "b": ');
    assert.throws(
      () => loadTokenizerFromFolder(dir),
      (e: unknown) => e instanceof CheckpointError && e.message.includes(vocab) && /not valid JSON/.test(e.message),
    );
    writeFileSync(vocab, '[1, 2]');
    assert.throws(
      () => ClipTokenizer.fromVocabMerges(vocab, merges),
      (e: unknown) => e instanceof CheckpointError && e.message.includes(vocab) && /found an array/.test(e.message),
    );
    writeFileSync(vocab, JSON.stringify({ a: 0, b: 'one' }));
    assert.throws(
      () => ClipTokenizer.fromVocabMerges(vocab, merges),
      (e: unknown) => e instanceof CheckpointError && /"b" has id string/.test(e.message),
    );
    writeFileSync(vocab, JSON.stringify({ i: 0, n: 1, in: 2 }));
    assert.throws(
      () => ClipTokenizer.fromVocabMerges(vocab, merges),
      (e: unknown) =>
        e instanceof CheckpointError && e.message.includes(merges) && /do not belong together/.test(e.message),
    );
    writeFileSync(vocab, JSON.stringify({ i: 0, n: 1, in: 2 }));
    writeFileSync(merges, '#version: 0.2\ni n\n');
    assert.throws(
      () => ClipTokenizer.fromVocabMerges(vocab, merges),
      (e: unknown) => e instanceof CheckpointError && /<\|startoftext\|>/.test(e.message),
    );
    writeFileSync(merges, '#version: 0.2\ni n x\n');
    assert.throws(
      () => ClipTokenizer.fromVocabMerges(vocab, merges),
      (e: unknown) => e instanceof CheckpointError && /line 2/.test(e.message),
    );

    const tj = join(dir, 'tokenizer.json');
    const obj = tokenizerJson(tok) as any;
    obj.model.end_of_word_suffix = null;
    writeFileSync(tj, JSON.stringify(obj));
    assert.throws(
      () => ClipTokenizer.fromTokenizerJson(tj),
      (e: unknown) =>
        e instanceof CheckpointError && e.message.includes(tj) && /model\.end_of_word_suffix/.test(e.message),
    );
    writeFileSync(tj, JSON.stringify({ model: { type: 'WordPiece' } }));
    assert.throws(
      () => ClipTokenizer.fromTokenizerJson(tj),
      (e: unknown) => e instanceof CheckpointError && /"model\.type" is "WordPiece"/.test(e.message),
    );
    assert.throws(
      () => ClipTokenizer.fromTokenizerJson(join(dir, 'nope.json')),
      (e: unknown) => e instanceof CheckpointError && /does not exist/.test(e.message),
    );
  });
});

test('htmlUnescape equals Python html.unescape on all 2,231 HTML5 names, legacy prefixes and numeric edge rules', () => {
  const g = JSON.parse(readFileSync(join(import.meta.dirname, 'golden/html-unescape.json'), 'utf8')) as {
    names: number;
    cases: Array<[string, string]>;
  };
  assert.equal(g.names, 2231);
  const bad = g.cases.filter(([input, want]) => htmlUnescape(input) !== want);
  assert.deepEqual(
    bad.slice(0, 5).map(([i, w]) => [i, w, htmlUnescape(i)]),
    [],
    `${bad.length} of ${g.cases.length} differ`,
  );
});
