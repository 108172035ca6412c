// Image decoding, PIL-exact resize and the CLIP preprocessing pipeline, checked against PIL goldens (tools/pil_reference.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, DataError } from '../src/errors.ts';
import { decodeImage, toRgb } from '../src/io/image.ts';
import { resizeU8 } from '../src/io/resize.ts';
import {
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  defaultPreprocessorConfig,
  loadPreprocessorConfig,
  outputShape,
  parsePreprocessorConfig,
  preprocessImage,
  preprocessPixels,
  preprocessRgb,
  resizeForConfig,
  serializePreprocessorConfig,
} from '../src/io/preprocess.ts';
import { makeTempDir, removeDir } from './helpers/temp.ts';

const here = dirname(fileURLToPath(import.meta.url));
const IMAGES = join(here, 'golden', 'images');
const GOLD = join(here, 'golden', 'preprocess');

interface Entry {
  sha256: string;
  shape: number[];
  file?: string;
}
interface Manifest {
  pil_version: string;
  configs: Record<string, unknown>;
  images: Record<string, Entry & { pil_mode: string; width: number; height: number }>;
  cases: { image: string; config: string; resized: Entry; pixels: Entry }[];
  box_cases: {
    image: string;
    size: [number, number];
    box: [number, number, number, number];
    resample: 2 | 3;
    result: Entry;
  }[];
}
const manifest = JSON.parse(readFileSync(join(GOLD, 'manifest.json'), 'utf8')) as Manifest;

const sha = (a: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
const golden = (e: Entry): Buffer => readFileSync(join(GOLD, e.file!));

function assertBytes(actual: Uint8Array, e: Entry, what: string): void {
  if (e.file === undefined) {
    assert.equal(sha(actual), e.sha256, `${what}: sha256 differs from PIL's`);
    return;
  }
  const want = golden(e);
  assert.equal(actual.length, want.length, `${what}: length`);
  let diffs = 0,
    first = -1,
    maxd = 0;
  for (let i = 0; i < want.length; i++) {
    if (actual[i] !== want[i]) {
      if (first < 0) first = i;
      diffs++;
      maxd = Math.max(maxd, Math.abs(actual[i]! - want[i]!));
    }
  }
  assert.equal(diffs, 0, `${what}: ${diffs} bytes differ from PIL (first at ${first}, max diff ${maxd})`);
}

function assertFloats(actual: Float32Array, e: Entry, what: string): void {
  if (e.file === undefined) {
    assert.equal(sha(actual), e.sha256, `${what}: float32 sha256 differs from PIL+numpy's`);
    return;
  }
  const buf = golden(e);
  const want = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  assert.equal(actual.length, want.length, `${what}: length`);
  let maxd = 0;
  for (let i = 0; i < want.length; i++) maxd = Math.max(maxd, Math.abs(actual[i]! - want[i]!));
  assert.ok(maxd <= 1e-6, `${what}: max abs diff ${maxd} > 1e-6`);
}

test(`decodeImage matches PIL ${manifest.pil_version} convert('RGB') on every golden image`, async () => {
  for (const [fn, e] of Object.entries(manifest.images)) {
    const img = await decodeImage(join(IMAGES, fn));
    assert.deepEqual([img.height, img.width, 3], e.shape, `${fn} (${e.pil_mode}) shape`);
    assertBytes(img.data, e, `${fn} (PIL mode ${e.pil_mode})`);
  }
});

test('conversion cases are present: grey, grey+alpha, RGBA, palette, palette+tRNS, animated GIF, WebP, EXIF-rotated JPEG, ICC JPEG', () => {
  const modes = Object.fromEntries(Object.entries(manifest.images).map(([f, e]) => [f, e.pil_mode]));
  assert.equal(modes['grey.png'], 'L');
  assert.equal(modes['grey_alpha.png'], 'LA');
  assert.equal(modes['rgba.png'], 'RGBA');
  assert.equal(modes['palette.gif'], 'P');
  assert.equal(modes['palette_trns.png'], 'P');
  for (const f of ['anim.gif', 'lossy.webp', 'exif_rot6.jpg', 'rocket.jpg']) assert.ok(f in modes, f);
});

test('resize and full pipeline match PIL + numpy (HF CLIPImageProcessor) on every golden case', async () => {
  const decoded = new Map<string, Awaited<ReturnType<typeof decodeImage>>>();
  for (const c of manifest.cases) {
    if (!decoded.has(c.image)) decoded.set(c.image, await decodeImage(join(IMAGES, c.image)));
    const img = decoded.get(c.image)!;
    const cfg = parsePreprocessorConfig(manifest.configs[c.config], `manifest config ${c.config}`);
    const what = `${c.image} / ${c.config}`;
    const r = resizeForConfig(img.data, img.width, img.height, cfg);
    assert.deepEqual([r.height, r.width, 3], c.resized.shape, `${what}: resized shape`);
    assertBytes(r.data, c.resized, `${what}: resized uint8`);
    const px = preprocessRgb(img.data, img.width, img.height, cfg);
    assert.deepEqual(outputShape(cfg, img.width, img.height), c.pixels.shape, `${what}: output shape`);
    assertFloats(px, c.pixels, `${what}: pixel_values`);
  }
  const full = manifest.cases.filter((c) => c.pixels.file !== undefined && c.config === 's224');
  assert.ok(full.length >= 1, 'at least one 224 case is stored in full');
});

test('resizeU8 with a fractional source box matches PIL Image.resize(size, filter, box)', async () => {
  assert.ok(manifest.box_cases.length >= 3);
  for (const bc of manifest.box_cases) {
    const img = await decodeImage(join(IMAGES, bc.image));
    const out = resizeU8({ ...img, channels: 3 }, bc.size[0], bc.size[1], { box: bc.box, filter: bc.resample });
    assertBytes(
      out.data,
      bc.result,
      `${bc.image} box [${bc.box.join(', ')}] -> ${bc.size.join('x')} filter ${bc.resample}`,
    );
  }
});

test('resizeU8 region equals cropping the full result (up, down, identity, box, both filters)', () => {
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
  for (let t = 0; t < 40; t++) {
    const W = 1 + Math.floor(rnd() * 60),
      H = 1 + Math.floor(rnd() * 60);
    const ow = t % 7 === 0 ? W : 1 + Math.floor(rnd() * 70),
      oh = t % 5 === 0 ? H : 1 + Math.floor(rnd() * 70);
    const data = new Uint8Array(W * H * 3).map(() => Math.floor(rnd() * 256));
    const filter = t % 3 === 0 ? 2 : 3;
    const box =
      t % 4 === 1 ? ([rnd() * W * 0.3, rnd() * H * 0.3, W - rnd() * W * 0.3, H - rnd() * H * 0.3] as const) : undefined;
    const full = resizeU8({ width: W, height: H, channels: 3, data }, ow, oh, { filter, box });
    const rx = Math.floor(rnd() * ow),
      ry = Math.floor(rnd() * oh);
    const rw = 1 + Math.floor(rnd() * (ow - rx)),
      rh = 1 + Math.floor(rnd() * (oh - ry));
    const part = resizeU8({ width: W, height: H, channels: 3, data }, ow, oh, {
      filter,
      box,
      region: [rx, ry, rw, rh],
    });
    assert.deepEqual([part.width, part.height], [rw, rh]);
    for (let y = 0; y < rh; y++) {
      const want = full.data.subarray(((ry + y) * ow + rx) * 3, ((ry + y) * ow + rx + rw) * 3);
      assert.deepEqual(
        part.data.subarray(y * rw * 3, (y + 1) * rw * 3),
        want,
        `case ${t}: ${W}x${H} -> ${ow}x${oh} region row ${y}`,
      );
    }
  }
});

test('resizeU8: identity copies, constant images stay constant, box selects a region', () => {
  const src = new Uint8Array(7 * 5 * 3).map((_, i) => (i * 37) % 256);
  const same = resizeU8({ width: 7, height: 5, channels: 3, data: src }, 7, 5);
  assert.deepEqual(same.data, src);
  assert.notEqual(same.data, src);
  const flat = new Uint8Array(13 * 11 * 3).fill(200);
  for (const [w, h] of [
    [5, 4],
    [30, 29],
    [13, 3],
    [2, 11],
  ] as const) {
    const out = resizeU8({ width: 13, height: 11, channels: 3, data: flat }, w, h);
    assert.ok(
      out.data.every((v) => v === 200),
      `${w}x${h}`,
    );
  }
  // A box covering columns 2..4 resampled to 2 columns at scale 1 is a plain crop.
  const crop = resizeU8({ width: 7, height: 5, channels: 3, data: src }, 2, 5, { box: [2, 0, 4, 5] });
  for (let y = 0; y < 5; y++) {
    for (let i = 0; i < 6; i++) assert.equal(crop.data[y * 6 + i], src[y * 21 + 6 + i]);
  }
  assert.throws(() => resizeU8({ width: 7, height: 5, channels: 3, data: src.subarray(1) }, 3, 3), /expected 7x5x3/);
});

test('toRgb replicates grey and drops alpha without compositing', () => {
  assert.deepEqual([...toRgb(Uint8Array.of(9, 200), 2, 1, 1)], [9, 9, 9, 200, 200, 200]);
  assert.deepEqual([...toRgb(Uint8Array.of(9, 0, 200, 17), 2, 1, 2)], [9, 9, 9, 200, 200, 200]);
  assert.deepEqual([...toRgb(Uint8Array.of(1, 2, 3, 0, 4, 5, 6, 128), 2, 1, 4)], [1, 2, 3, 4, 5, 6]);
  const grey = preprocessPixels(Uint8Array.of(10, 20, 30, 40), 2, 2, 1, defaultPreprocessorConfig(4));
  assert.equal(grey.length, 3 * 4 * 4);
});

test('missing, corrupt and truncated images give DataError naming the file', async (t) => {
  const dir = makeTempDir('mope-img-');
  t.after(() => removeDir(dir));
  const missing = join(dir, 'nope.jpg');
  await assert.rejects(
    decodeImage(missing),
    (e: unknown) => e instanceof DataError && e.message.includes(missing) && /not found/.test(e.message),
  );
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, 'this is not a PNG at all\n');
  await assert.rejects(
    decodeImage(corrupt),
    (e: unknown) => e instanceof DataError && e.message.startsWith(`cannot decode image ${corrupt}:`),
  );
  const truncated = join(dir, 'truncated.jpg');
  writeFileSync(truncated, readFileSync(join(IMAGES, 'rocket.jpg')).subarray(0, 3000));
  await assert.rejects(decodeImage(truncated), (e: unknown) => e instanceof DataError && e.message.includes(truncated));
  const empty = join(dir, 'empty.webp');
  writeFileSync(empty, '');
  await assert.rejects(
    decodeImage(empty),
    (e: unknown) => e instanceof DataError && e.message.includes(empty) && /empty/.test(e.message),
  );
  await assert.rejects(
    decodeImage(new Uint8Array([1, 2, 3]), 'upload #3'),
    (e: unknown) => e instanceof DataError && e.message.includes('upload #3'),
  );
  await assert.rejects(preprocessImage(missing, defaultPreprocessorConfig()), DataError);
});

test('preprocessor config: int forms, defaults, serialisation round trip', () => {
  const legacy = parsePreprocessorConfig({
    size: 224,
    crop_size: 224,
    resample: 3,
    feature_extractor_type: 'CLIPFeatureExtractor',
  });
  assert.deepEqual(legacy, defaultPreprocessorConfig(224));
  assert.deepEqual(parsePreprocessorConfig({}), defaultPreprocessorConfig(224));
  const hw = parsePreprocessorConfig({
    size: { height: 40, width: 56 },
    crop_size: { height: 36, width: 50 },
    do_normalize: false,
  });
  assert.deepEqual(hw.size, { height: 40, width: 56 });
  assert.equal(hw.doNormalize, false);
  const ser = serializePreprocessorConfig(defaultPreprocessorConfig(336));
  assert.deepEqual(JSON.parse(JSON.stringify(ser)), {
    crop_size: { height: 336, width: 336 },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [...OPENAI_CLIP_MEAN],
    image_processor_type: 'CLIPImageProcessor',
    image_std: [...OPENAI_CLIP_STD],
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { shortest_edge: 336 },
  });
  assert.ok(JSON.stringify(ser).includes('"rescale_factor":0.00392156862745098'));
  assert.deepEqual(parsePreprocessorConfig(ser), defaultPreprocessorConfig(336));
  assert.deepEqual(parsePreprocessorConfig(serializePreprocessorConfig(hw)), hw);
});

test('bad preprocessor config gives ConfigError naming the field', () => {
  const cases: [unknown, string][] = [
    [{ size: 'big' }, '"size"'],
    [{ size: { shortest_edge: 0 } }, '"size.shortest_edge"'],
    [{ size: { height: 10 } }, '"size.width"'],
    [{ crop_size: [224, 224] }, '"crop_size"'],
    [{ crop_size: { height: 224, width: 2.5 } }, '"crop_size.width"'],
    [{ resample: 1 }, '"resample"'],
    [{ image_mean: [0.5, 0.5] }, '"image_mean"'],
    [{ image_std: [0.5, 0, 0.5] }, '"image_std"'],
    [{ do_resize: 'yes' }, '"do_resize"'],
    [{ rescale_factor: -1 }, '"rescale_factor"'],
    [{ image_processor_type: 'ViTImageProcessor' }, '"image_processor_type"'],
    [[1, 2], '(top level)'],
  ];
  for (const [json, field] of cases) {
    assert.throws(
      () => parsePreprocessorConfig(json, '/m/preprocessor_config.json'),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.startsWith('/m/preprocessor_config.json: field ') &&
        e.message.includes(field) &&
        e.message.includes('found'),
      `${JSON.stringify(json)} → ${field}`,
    );
  }
});

test('loadPreprocessorConfig: missing file → defaults for the model size; bad JSON → ConfigError naming the file', async (t) => {
  const dir = makeTempDir('mope-pp-');
  t.after(() => removeDir(dir));
  assert.deepEqual(await loadPreprocessorConfig(dir, 336), defaultPreprocessorConfig(336));
  const file = join(dir, 'preprocessor_config.json');
  writeFileSync(file, JSON.stringify(serializePreprocessorConfig(defaultPreprocessorConfig(64))));
  assert.deepEqual(await loadPreprocessorConfig(dir, 336), defaultPreprocessorConfig(64));
  writeFileSync(file, '{"size": 224,');
  await assert.rejects(
    loadPreprocessorConfig(dir, 224),
    (e: unknown) => e instanceof ConfigError && e.message.includes(file),
  );
  writeFileSync(file, '{"resample": 0}');
  await assert.rejects(
    loadPreprocessorConfig(dir, 224),
    (e: unknown) => e instanceof ConfigError && e.message.includes(file) && e.message.includes('"resample"'),
  );
});

test('preprocessRgb writes into a batch slot and checks sizes', async () => {
  const img = await decodeImage(join(IMAGES, 'chelsea.png'));
  const cfg = defaultPreprocessorConfig(32);
  const batch = new Float32Array(2 * 3 * 32 * 32);
  const slot = batch.subarray(3 * 32 * 32);
  assert.equal(preprocessRgb(img.data, img.width, img.height, cfg, slot), slot);
  assert.deepEqual(slot, preprocessRgb(img.data, img.width, img.height, cfg));
  assert.ok(batch.subarray(0, 3 * 32 * 32).every((v) => v === 0));
  assert.throws(() => preprocessRgb(img.data, img.width, img.height, cfg, new Float32Array(5)), DataError);
  assert.throws(() => preprocessRgb(img.data.subarray(3), img.width, img.height, cfg), DataError);
  assert.ok(existsSync(join(IMAGES, 'README.md')));
});
