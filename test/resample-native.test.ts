// The native resize passes (native/image.c) against their TypeScript twin (src/engine/resample.ts), which the
// PIL goldens in test/image.test.ts pin to Pillow: same bytes for every shape, filter, channel count, box and
// region; the preprocessing pipeline the same floats; out-of-range coefficient tables refused, naming the argument.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeKernels } from '../src/engine/native.ts';
import { JS_RESAMPLE, PIL_BICUBIC, PIL_BILINEAR, resizeU8 } from '../src/io/resize.ts';
import { defaultPreprocessorConfig, preprocessRgb } from '../src/io/preprocess.ts';

const native = loadNativeKernels();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('native resize passes give the same bytes as the TypeScript twin', () => {
  const r = rng(7);
  let cases = 0;
  for (let t = 0; t < 120; t++) {
    const W = 1 + Math.floor(r() * 70),
      H = 1 + Math.floor(r() * 70),
      C = 1 + Math.floor(r() * 4);
    const outW = 1 + Math.floor(r() * 90),
      outH = 1 + Math.floor(r() * 90);
    const data = new Uint8Array(W * H * C);
    // extremes (0/255 edges) drive the clipping of the bicubic overshoot
    for (let i = 0; i < data.length; i++) data[i] = r() < 0.3 ? (r() < 0.5 ? 0 : 255) : Math.floor(r() * 256);
    const filter = r() < 0.5 ? PIL_BICUBIC : PIL_BILINEAR;
    const opts: Parameters<typeof resizeU8>[3] = { filter };
    if (t % 3 === 1) opts.box = [r() * W * 0.4, r() * H * 0.4, W - r() * W * 0.4, H - r() * H * 0.4];
    if (t % 4 === 2 && outW > 2 && outH > 2) {
      const rx = Math.floor(r() * (outW / 2)),
        ry = Math.floor(r() * (outH / 2));
      opts.region = [rx, ry, 1 + Math.floor(r() * (outW - rx - 1)), 1 + Math.floor(r() * (outH - ry - 1))];
    }
    const img = { width: W, height: H, channels: C, data };
    const a = resizeU8(img, outW, outH, { ...opts, kernels: JS_RESAMPLE });
    const b = resizeU8(img, outW, outH, { ...opts, kernels: native });
    assert.equal(b.width, a.width);
    assert.equal(b.height, a.height);
    assert.deepEqual(b.data, a.data, `case ${t}: ${W}x${H}x${C} → ${outW}x${outH} ${JSON.stringify(opts)}`);
    cases++;
  }
  assert.equal(cases, 120);
});

test('preprocessRgb with native kernels: the same floats as with the TypeScript twin', () => {
  const r = rng(11);
  for (const [w, h] of [
    [96, 96],
    [300, 200],
    [50, 400],
  ] as const) {
    const rgb = new Uint8Array(w * h * 3).map(() => Math.floor(r() * 256));
    const cfg = defaultPreprocessorConfig(224);
    assert.deepEqual(preprocessRgb(rgb, w, h, cfg, undefined, native), preprocessRgb(rgb, w, h, cfg), `${w}x${h}`);
  }
});

test('native resize passes refuse tables that would read outside their input', () => {
  const src = new Uint8Array(4 * 3 * 3); // 4 wide, 3 rows, RGB
  const out = new Uint8Array(2 * 3 * 3);
  const ok = {
    start: new Int32Array([0, 2]),
    count: new Int32Array([2, 2]),
    k: new Int32Array([1 << 21, 1 << 21, 1 << 21, 1 << 21]),
  };
  native.resampleRows(out, src, 4, 0, 3, 2, 3, 2, ok.start, ok.count, ok.k); // fine
  assert.throws(
    () => native.resampleRows(out, src, 4, 0, 3, 2, 3, 2, new Int32Array([0, 3]), ok.count, ok.k),
    /resampleRows: window 1 \(start 3, count 2\) must lie in \[0, 4\)/,
  );
  assert.throws(() => native.resampleRows(out, src, 4, 1, 3, 2, 3, 2, ok.start, ok.count, ok.k), /src has 36 bytes/);
  assert.throws(
    () => native.resampleRows(out, src, 4, 0, 3, 2, 3, 2, ok.start, ok.count, new Int32Array(3)),
    /k has 3 elements, expected n\*ksize = 4/,
  );
  assert.throws(
    () => native.resampleRows(out, src, 4, 0, 3, 2, 3, 2, new Float32Array(2) as unknown as Int32Array, ok.count, ok.k),
    /start must be a Int32Array/,
  );
  assert.throws(() => native.resampleRows(out, out, 4, 0, 1, 2, 3, 2, ok.start, ok.count, ok.k), /overlaps/);
  // vertical: src holds rows 1 … 2 (rowShift 1) of a 4-wide RGB image; a window starting at row 0 is refused
  const v = new Uint8Array(2 * 12);
  const vout = new Uint8Array(2 * 12);
  native.resampleCols(vout, v, 4, 2, 3, 2, new Int32Array([1, 1]), new Int32Array([2, 2]), ok.k, 1);
  assert.throws(
    () => native.resampleCols(vout, v, 4, 2, 3, 2, new Int32Array([0, 1]), new Int32Array([2, 2]), ok.k, 1),
    /resampleCols: window 0 \(start 0, count 2\) must lie in \[1, 3\)/,
  );
  assert.throws(
    () => native.resampleCols(vout, v, 4, 2, 5, 2, new Int32Array([1, 1]), new Int32Array([2, 2]), ok.k, 1),
    /channels must be 1 to 4, got 5/,
  );
});
