// The fuzz suite's fixture and cases: a tiny checkpoint, images and data files, and N seeded mutations of them
// (safetensors, config, tokenizer files, images, data files, flags), each a CLI argv plus environment.
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { writeTinyCheckpoint } from './tiny.ts';
import { ClipTokenizer } from '../../src/io/tokenizer.ts';
import { writeTokenizerFolder } from '../../src/io/tokenizer-files.ts';
import { deepJson, int, mutateBytes, mutateJson, ODD_FLAG_VALUES, pick, seeded, type Rand } from './fuzz-random.ts';

export type Family = 'safetensors' | 'config' | 'tokenizer' | 'image' | 'data' | 'flags';
export const FAMILIES: readonly Family[] = ['safetensors', 'config', 'tokenizer', 'image', 'data', 'flags'];

export interface FuzzCase {
  id: string;
  family: Family;
  note: string;
  args: string[];
  env?: Record<string, string>;
  /** The input is known bad: exit 0 is a wrong success. 'usage' additionally demands exit 2. */
  expect?: 'fail' | 'usage';
  /** Run through bin/mope-clip.mjs in its own process (may hang or allocate before the fixes). */
  isolate?: boolean;
}

export interface Fixture {
  root: string;
  model: string;
  tokModel: string;
  images: string[];
  scores: string;
  csv: string;
  jsonl: string;
  coco: string;
}

async function png(path: string, w: number, h: number, seed: number): Promise<void> {
  const r = seeded(seed);
  const px = Buffer.from(Array.from({ length: w * h * 3 }, () => int(r, 0, 255)));
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

/** Writes the shared fixture under root (a few seconds: tiny model, 4 images, data files, a scores file). */
export async function buildFixture(root: string, bin: string): Promise<Fixture> {
  const model = join(root, 'model');
  writeTinyCheckpoint(model, { withTokenizer: true, seed: 3 });
  const tokModel = join(root, 'tok-model');
  mkdirSync(tokModel, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json'])
    symlinkSync(join(model, f), join(tokModel, f));
  writeTokenizerFolder(ClipTokenizer.fromBundledVocab(), tokModel);
  const imgDir = join(root, 'images');
  mkdirSync(imgDir);
  const images: string[] = [];
  for (let i = 0; i < 4; i++) {
    const p = join(imgDir, `im${i}.png`);
    await png(p, 24 + i * 4, 20 + i * 3, i + 1);
    images.push(p);
  }
  const jpg = join(imgDir, 'im4.jpg');
  await sharp(readFileSync(images[0]!)).jpeg().toFile(jpg);
  images.push(jpg);
  const caps = ['a red square', 'a blue photo', 'a small dog', 'two green cats', 'a jpeg picture'];
  const csv = join(root, 'data.csv');
  writeFileSync(csv, 'filepath,title\n' + images.map((p, i) => `${p},${caps[i]}`).join('\n') + '\n');
  const jsonl = join(root, 'data.jsonl');
  writeFileSync(jsonl, images.map((p, i) => JSON.stringify({ image: p, caption: caps[i] })).join('\n') + '\n');
  const coco = join(root, 'coco.json');
  writeFileSync(
    coco,
    JSON.stringify({
      images: images.map((p, i) => ({
        filepath: imgDir,
        filename: p.slice(imgDir.length + 1),
        split: 'test',
        sentences: [{ raw: caps[i] }, { raw: caps[(i + 1) % 5] }],
      })),
    }),
  );
  const scores = join(root, 'scores.json');
  const r = spawnSync(
    process.execPath,
    [
      bin,
      'score',
      '--model',
      model,
      '--metric',
      'magnitude',
      '--tower',
      'vision',
      '--granularity',
      'heads',
      '--out',
      scores,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`fixture: score failed: ${r.stderr}`);
  return { root, model, tokModel, images, scores, csv, jsonl, coco };
}

/** A GEOMETRY.json of the tiny shape with `text` fields overridden; returns its path. */
function geometryFile(dir: string, text: Record<string, number>): string {
  const p = join(
    dir,
    `geometry-${Object.entries(text)
      .map(([k, v]) => `${k}${v}`)
      .join('-')}.json`,
  );
  writeFileSync(
    p,
    JSON.stringify({
      text: { hidden: 32, layers: 2, heads: 4, ffn: 64, ...text },
      vision: { hidden: 48, layers: 2, heads: 4, ffn: 96, imageSize: 32, patchSize: 8 },
      projectionDim: 16,
    }),
  );
  return p;
}

/** A copy of the model folder (symlinks) with `file` replaced by `data`; returns the folder. */
function variant(fx: Fixture, dir: string, file: string, data: string | Uint8Array, from = fx.model): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(from)) if (f !== file) symlinkSync(join(from, f), join(dir, f));
  writeFileSync(join(dir, file), data);
  return dir;
}

function headerRegion(st: Uint8Array): [number, number] {
  const n = Number(Buffer.from(st).readBigUInt64LE(0));
  return [0, 8 + n];
}

/** Injects a non-finite value into one float tensor of a safetensors file (F32 only). */
function poisonTensor(r: Rand, st: Uint8Array): { data: Uint8Array; name: string; value: number } {
  const buf = Buffer.from(st);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const names = Object.keys(header).filter((k) => k !== '__metadata__' && header[k]!.dtype === 'F32');
  const name = pick(r, names);
  const [b, e] = header[name]!.data_offsets;
  const at = 8 + n + b + 4 * int(r, 0, (e - b) / 4 - 1);
  const value = pick(r, [Infinity, -Infinity, NaN]);
  buf.writeFloatLE(value, at);
  return { data: buf, name, value };
}

const CONFIG_PATHS = [
  'projection_dim',
  'text_config',
  'vision_config',
  'model_type',
  'mope_clip',
  ...[
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'layer_norm_eps',
    'hidden_act',
  ].flatMap((k) => [`text_config.${k}`, `vision_config.${k}`]),
  'text_config.vocab_size',
  'text_config.max_position_embeddings',
  'text_config.eos_token_id',
  'text_config.bos_token_id',
  'vision_config.image_size',
  'vision_config.patch_size',
  'vision_config.num_channels',
];

export async function buildCases(fx: Fixture, seed: number, count: number): Promise<FuzzCase[]> {
  const cases: FuzzCase[] = [];
  const cdir = (i: number) => join(fx.root, 'cases', `c${i}`);
  const st = readFileSync(join(fx.model, 'model.safetensors'));
  const config = JSON.parse(readFileSync(join(fx.model, 'config.json'), 'utf8')) as Record<string, unknown>;
  const vocab = JSON.parse(readFileSync(join(fx.model, 'vocab.json'), 'utf8')) as Record<string, number>;
  const vocabKeys = Object.keys(vocab);
  const merges = readFileSync(join(fx.model, 'merges.txt'));
  const tokJson = readFileSync(join(fx.tokModel, 'tokenizer.json'));
  const imgBytes = fx.images.map((p) => readFileSync(p));
  const per = Math.ceil(count / FAMILIES.length);
  const embedBoth = (m: string) => ['embed', '--model', m, '--text', 'a photo of a dog', '--image', fx.images[0]!];

  for (let i = 0; cases.length < count; i++) {
    const family = FAMILIES[Math.floor(i / per) % FAMILIES.length]!;
    const k = i % per;
    const r = seeded((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const id = `${family}-${k}`;
    const dir = cdir(i);
    const add = (c: Omit<FuzzCase, 'id' | 'family'>) => cases.push({ id, family, ...c });
    switch (family) {
      case 'safetensors': {
        if (k % 6 === 5) {
          const p = poisonTensor(r, st);
          add({
            note: `${p.name} holds ${p.value}`,
            args: embedBoth(variant(fx, dir, 'model.safetensors', p.data)),
            expect: 'fail',
          });
        } else {
          const region = k % 3 === 0 ? undefined : headerRegion(st);
          const m = variant(fx, dir, 'model.safetensors', mutateBytes(r, st, region));
          add({
            note: `${region ? 'header' : 'file'} bytes mutated`,
            args: k % 2 ? ['info', '--model', m] : embedBoth(m),
          });
        }
        break;
      }
      case 'config': {
        let text: string, note: string, expect: FuzzCase['expect'];
        if (k % 10 === 9) {
          text = k % 20 === 9 ? deepJson(200_000) : `{"text_config": ${deepJson(int(r, 5000, 100_000), '{"a":', '}')}}`;
          note = 'deeply nested JSON';
          expect = 'fail';
        } else if (k % 10 === 8) {
          text = Buffer.from(mutateBytes(r, Buffer.from(JSON.stringify(config)))).toString('latin1');
          note = 'config bytes mutated';
        } else {
          const m = mutateJson(r, config, CONFIG_PATHS);
          text = JSON.stringify(m.value);
          note = m.note;
          if (
            /= null$/.test(note) &&
            /(hidden_size|num_attention_heads|num_hidden_layers|intermediate_size|image_size|patch_size|projection_dim)$/.test(
              note.split(' ')[0]!,
            )
          )
            expect = 'fail';
        }
        add({
          note,
          args:
            k % 3 === 2
              ? ['info', '--model', variant(fx, dir, 'config.json', text)]
              : embedBoth(variant(fx, dir, 'config.json', text)),
          expect,
        });
        break;
      }
      case 'tokenizer': {
        const sub = k % 4;
        const cmd = (m: string) =>
          r() < 0.5
            ? ['tokenize', '--model', m, '--text', 'a photo of a cat']
            : ['embed', '--model', m, '--text', 'a photo of a cat'];
        if (sub === 0) {
          const v = { ...vocab };
          const key = k % 8 === 0 ? 'cat</w>' : pick(r, vocabKeys);
          const bad = pick(r, [2 ** 31, -1, 1e9, 1.5, 'x', null, 49408, 2 ** 53]);
          (v as Record<string, unknown>)[key] = bad;
          add({
            note: `vocab.json ${JSON.stringify(key)} = ${JSON.stringify(bad)}`,
            args: cmd(variant(fx, dir, 'vocab.json', JSON.stringify(v))),
            expect: key === 'cat</w>' || bad === 'x' || bad === null || bad === 1.5 ? 'fail' : undefined,
          });
        } else if (sub === 1) {
          add({ note: 'merges.txt bytes mutated', args: cmd(variant(fx, dir, 'merges.txt', mutateBytes(r, merges))) });
        } else if (sub === 2) {
          add({
            note: 'tokenizer.json bytes mutated',
            args: cmd(
              variant(
                fx,
                dir,
                'tokenizer.json',
                mutateBytes(r, tokJson, [0, Math.min(tokJson.length, 4000)]),
                fx.tokModel,
              ),
            ),
          });
        } else {
          const t = JSON.parse(tokJson.toString('utf8')) as Record<string, unknown>;
          const m = mutateJson(r, t, [
            'model.vocab',
            'model.merges',
            'model',
            'added_tokens',
            'model.type',
            'model.end_of_word_suffix',
            'post_processor',
            'normalizer',
            'pre_tokenizer',
            'model.unk_token',
          ]);
          add({
            note: `tokenizer.json ${m.note}`,
            args: cmd(variant(fx, dir, 'tokenizer.json', JSON.stringify(m.value), fx.tokModel)),
          });
        }
        break;
      }
      case 'image': {
        mkdirSync(dir, { recursive: true });
        const sub = k % 10;
        let path: string,
          note: string,
          expect: FuzzCase['expect'],
          isolate = false;
        if (sub === 9) {
          const special = [
            ['/dev/zero', 'a device'],
            ['/dev/urandom', 'a device'],
            [fx.root, 'a directory'],
            ['fifo', 'a FIFO'],
            ['svg', 'SVG 16000x16000'],
            ['empty', 'empty file'],
            ['text', 'a text file'],
          ] as const;
          const [what, n] = special[Math.floor(k / 10) % special.length]!;
          note = n;
          expect = 'fail';
          if (what === 'fifo') {
            path = join(dir, 'pipe.png');
            spawnSync('mkfifo', [path]);
            isolate = true;
          } else if (what === 'svg') {
            path = join(dir, 'big.svg');
            writeFileSync(
              path,
              '<svg xmlns="http://www.w3.org/2000/svg" width="16000" height="16000"><rect width="16000" height="16000"/></svg>',
            );
            isolate = true;
          } else if (what === 'empty' || what === 'text') {
            path = join(dir, 'x.png');
            writeFileSync(path, what === 'empty' ? '' : 'hello, not an image\n');
          } else {
            path = what;
            isolate = what.startsWith('/dev');
          }
        } else {
          const j = int(r, 0, imgBytes.length - 1);
          path = join(dir, j === 4 ? 'x.jpg' : 'x.png');
          writeFileSync(path, mutateBytes(r, imgBytes[j]!));
          note = `${j === 4 ? 'JPEG' : 'PNG'} bytes mutated`;
        }
        add({ note, args: ['embed', '--model', fx.model, '--image', path], expect, isolate });
        break;
      }
      case 'data': {
        mkdirSync(dir, { recursive: true });
        const kind = pick(r, ['csv', 'jsonl', 'coco'] as const);
        const src = kind === 'csv' ? fx.csv : kind === 'jsonl' ? fx.jsonl : fx.coco;
        let spec: string,
          note: string,
          expect: FuzzCase['expect'],
          isolate = false;
        if (k % 12 === 11) {
          const dev = pick(r, ['/dev/zero', '/dev/urandom', fx.root]);
          spec = kind === 'coco' ? `coco:${dev}:test` : `${kind}:${dev}`;
          note = `${kind} from ${dev === fx.root ? 'a directory' : dev}`;
          expect = 'fail';
          isolate = dev.startsWith('/dev');
        } else {
          const p = join(dir, kind === 'coco' ? 'coco.json' : `data.${kind}`);
          writeFileSync(p, mutateBytes(r, readFileSync(src)));
          spec = kind === 'coco' ? `coco:${p}:test` : `${kind}:${p}`;
          note = `${kind} bytes mutated`;
        }
        const task = kind === 'coco' || r() < 0.7 ? 'retrieval' : 'retrieval';
        add({
          note,
          args: [
            'eval',
            '--model',
            fx.model,
            '--task',
            task,
            '--data',
            spec,
            '--batch',
            '4',
            ...(r() < 0.3 ? ['--skip-bad'] : []),
          ],
          expect,
          isolate,
        });
        break;
      }
      case 'flags': {
        mkdirSync(dir, { recursive: true });
        const sub = k % 10;
        const v = pick(r, ODD_FLAG_VALUES);
        const file = join(dir, 'a-file');
        writeFileSync(file, 'x');
        const named: Array<Omit<FuzzCase, 'id' | 'family'>> = [
          {
            note: 'prune --out equals --model',
            args: [
              'prune',
              '--model',
              variant(fx, join(dir, 'm'), '__none__', ''),
              '--scores',
              fx.scores,
              '--tower',
              'vision',
              '--keep-heads',
              '0.5',
              '--out',
              join(dir, 'm'),
            ],
            expect: 'fail',
          },
          {
            note: 'prune --out inside --model',
            args: [
              'prune',
              '--model',
              fx.model,
              '--scores',
              fx.scores,
              '--tower',
              'vision',
              '--keep-heads',
              '0.5',
              '--out',
              join(fx.model, 'sub'),
            ],
            expect: 'fail',
          },
          { note: 'embed with no inputs', args: ['embed', '--model', fx.model], expect: 'usage' },
          {
            note: 'MOPE_THREADS=abc',
            args: ['embed', '--model', fx.model, '--text', 'x'],
            env: { MOPE_THREADS: 'abc' },
            expect: 'fail',
          },
          {
            note: 'MOPE_THREADS=100000',
            args: ['embed', '--model', fx.model, '--text', 'x'],
            env: { MOPE_THREADS: '100000' },
            expect: 'fail',
          },
          {
            note: '--threads 99999999999',
            args: ['embed', '--model', fx.model, '--text', 'x', '--threads', '99999999999'],
            expect: 'fail',
          },
          {
            note: 'bench --batch 99999999999',
            args: ['bench', '--geometry', 'tiny', '--iters', '1', '--batch', '99999999999'],
            expect: 'fail',
            isolate: true,
          },
          {
            note: 'prune --out is an existing file',
            args: [
              'prune',
              '--model',
              fx.model,
              '--scores',
              fx.scores,
              '--tower',
              'vision',
              '--keep-heads',
              '0.5',
              '--out',
              file,
            ],
            expect: 'fail',
          },
          {
            note: 'eval --cache is an existing file',
            args: ['eval', '--model', fx.model, '--task', 'retrieval', '--data', `csv:${fx.csv}`, '--cache', file],
            expect: 'fail',
          },
          {
            note: 'embed --out is a directory',
            args: ['embed', '--model', fx.model, '--text', 'x', '--out', dir],
            expect: 'fail',
          },
          {
            note: 'eval --workers 100000',
            args: [
              'eval',
              '--model',
              fx.model,
              '--task',
              'retrieval',
              '--data',
              `csv:${fx.csv}`,
              '--workers',
              '100000',
            ],
            expect: 'fail',
            isolate: true,
          },
          {
            note: 'data export --out is an existing file',
            args: ['data', 'export', `csv:${fx.csv}`, '--out', file],
            expect: 'fail',
          },
          { note: 'unknown command', args: ['frobnicate'], expect: 'usage' },
          { note: 'unknown flag', args: ['embed', '--model', fx.model, '--text', 'x', '--bogus'], expect: 'usage' },
          { note: 'missing --model', args: ['embed', '--text', 'x'], expect: 'usage' },
          {
            note: 'init --geometry with 2^31 text layers',
            args: ['init', '--geometry', geometryFile(dir, { layers: 2 ** 31 }), '--out', join(dir, 'g')],
            expect: 'fail',
            isolate: true,
          },
          {
            note: 'bench --iters 1e308',
            args: ['bench', '--geometry', 'tiny', '--batch', '1', '--iters', '1e308'],
            expect: 'fail',
            isolate: true,
          },
          {
            note: 'config num_hidden_layers 2^31',
            args: embedBoth(
              variant(
                fx,
                join(dir, 'L'),
                'config.json',
                JSON.stringify({
                  ...config,
                  text_config: { ...(config.text_config as object), num_hidden_layers: 2 ** 31 },
                }),
              ),
            ),
            expect: 'fail',
            isolate: true,
          },
          {
            note: 'init --geometry with hidden 65536 (2^12 GiB of weights)',
            args: ['init', '--geometry', geometryFile(dir, { hidden: 65536, heads: 1 }), '--out', join(dir, 'g')],
            expect: 'fail',
            isolate: true,
          },
        ];
        if (k < named.length) {
          add(named[k]!);
          break;
        }
        const flag = pick(r, [
          '--threads',
          '--batch',
          '--seed',
          '--limit',
          '--workers',
          'MOPE_THREADS',
          '--iters',
          '--keep-heads',
          '--keep-layers',
          '--min-heads',
        ]);
        let args: string[];
        let env: Record<string, string> | undefined;
        if (flag === 'MOPE_THREADS') {
          env = { MOPE_THREADS: v };
          args = ['embed', '--model', fx.model, '--text', 'x'];
        } else if (flag === '--threads') args = ['embed', '--model', fx.model, '--text', 'x', flag, v];
        else if (flag === '--batch' && sub < 5)
          args = ['embed', '--model', fx.model, '--text', 'x', '--text', 'y', flag, v];
        else if (flag === '--batch') args = ['bench', '--geometry', 'tiny', '--iters', '1', flag, v];
        else if (flag === '--iters') args = ['bench', '--geometry', 'tiny', '--batch', '2', flag, v];
        else if (flag === '--keep-heads' || flag === '--keep-layers' || flag === '--min-heads') {
          args = [
            'prune',
            '--model',
            fx.model,
            '--scores',
            fx.scores,
            '--tower',
            'vision',
            ...(flag === '--keep-heads' ? [] : ['--keep-heads', '0.5']),
            flag,
            v,
            '--out',
            join(dir, 'pruned'),
          ];
        } else
          args = [
            'eval',
            '--model',
            fx.model,
            '--task',
            'retrieval',
            '--data',
            `csv:${fx.csv}`,
            '--batch',
            '4',
            flag,
            v,
          ];
        const huge = Number(v) > 1000 || v === '1e308' || v === 'Infinity';
        add({
          note: `${flag} ${JSON.stringify(v)}`,
          args,
          env,
          isolate: huge && (flag === '--batch' || flag === '--workers' || flag === '--iters' || flag === '--limit'),
        });
        break;
      }
    }
  }
  return cases;
}
