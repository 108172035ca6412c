// Tests for the safetensors reader/writer and F16/BF16 conversion: round trips, exact layout, every bad input.
// Dims: small ad-hoc tensors only.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CheckpointError } from '../src/errors.ts';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ArrayToF16,
  f16ArrayToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  roundToF16InPlace,
} from '../src/io/fp16.ts';
import { SafetensorsReader, readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import type { TensorToWrite } from '../src/io/safetensors.ts';
import { Rng } from '../src/model/rng.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';

const dir = makeTempDir('mope-st-');
after(() => removeDir(dir));

let fileNo = 0;
function path(name = 'x'): string {
  return join(dir, `${name}-${fileNo++}.safetensors`);
}

/** Bytes of a safetensors file from a header object (serialised as is, unpadded) and a data buffer. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const h = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function writeBytes(bytes: Uint8Array, name = 'bad'): string {
  const p = path(name);
  writeFileSync(p, bytes);
  return p;
}

function expectBad(p: string, ...fragments: (string | RegExp)[]): void {
  assert.throws(
    () => SafetensorsReader.open(p).close(),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
      assert.ok(e.message.includes(p), `message should name the file: ${e.message}`);
      for (const f of fragments) {
        if (typeof f === 'string') assert.ok(e.message.includes(f), `message should mention '${f}': ${e.message}`);
        else assert.match(e.message, f);
      }
      return true;
    },
  );
}

const f32 = (...v: number[]) => new Float32Array(v);

describe('fp16 conversion', () => {
  test('F16 narrowing rounds to nearest even and handles the edges', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [1e9, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [3 * 2 ** -26, 0x0001],
      [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [0.1, 0x2e66],
      [65519, 0x7bff],
    ];
    for (const [x, bits] of cases) assert.equal(f32ToF16Bits(x), bits, `f16(${x})`);
    assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
    assert.equal(f16BitsToF32(0x0001), 2 ** -24);
    assert.equal(f16BitsToF32(0x7bff), 65504);
    assert.equal(f16BitsToF32(0xfc00), -Infinity);
    assert.ok(Object.is(f16BitsToF32(0x8000), -0));
  });

  test('every finite F16 value survives F16 -> F32 -> F16', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = f16ArrayToF32(all);
    const back = f32ArrayToF16(wide);
    for (let i = 0; i < 65536; i++) {
      if (((i >> 10) & 0x1f) === 0x1f && (i & 0x3ff) !== 0) continue; // NaN payloads may be quieted
      assert.equal(back[i], i, `bits ${i.toString(16)}`);
    }
  });

  test('array F16 narrowing (fast path) agrees with the scalar one on random bit patterns and ties', () => {
    const rng = new Rng(99);
    const bits = new Uint32Array(1 << 18);
    for (let i = 0; i < bits.length; i++) bits[i] = rng.nextU32();
    // Exact ties (dropped bits 0x1000) with both LSB parities, across every normal half exponent.
    for (let i = 0; i < 4096; i++)
      bits[i] = (((i & 0x7ff) << 13) + (113 << 23) + 0x1000 + (i >> 11) * (30 << 23)) >>> 0;
    const x = new Float32Array(bits.buffer);
    const h = f32ArrayToF16(x);
    for (let i = 0; i < x.length; i++) {
      if (Number.isNaN(x[i])) continue;
      if (h[i] !== f32ToF16Bits(x[i]!))
        assert.fail(`bits ${bits[i]!.toString(16)}: array ${h[i]} scalar ${f32ToF16Bits(x[i]!)}`);
    }
  });

  test('BF16 narrowing rounds to nearest even', () => {
    assert.equal(f32ToBf16Bits(1), 0x3f80);
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
    assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
    assert.ok(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN))));
    assert.equal(bf16BitsToF32(0x4049), 3.140625);
  });
});

describe('safetensors writer + reader', () => {
  test('F32 round trip: values, shapes, 0-rank, empty, I64, metadata, 8-byte header', () => {
    const p = path('rt32');
    const tensors = new Map<string, TensorToWrite>([
      ['w', { shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6.5) }],
      ['logit_scale', { shape: [], data: f32(2.6592) }],
      ['empty', { shape: [0, 4], data: new Float32Array(0) }],
      ['h', { shape: [3], data: f32(0.1, -0.2, 1e-30), dtype: 'F16' }],
      ['ids', { shape: [1, 3], data: new BigInt64Array([0n, 1n, 76n]), dtype: 'I64' }],
    ]);
    writeSafetensors(p, tensors, { metadata: { note: 'hi' } });
    const r = SafetensorsReader.open(p);
    try {
      assert.equal(r.headerLength % 8, 0);
      assert.deepEqual(r.metadata, { note: 'hi', format: 'pt' });
      assert.deepEqual(r.info('w').shape, [2, 3]);
      assert.deepEqual(r.readFloat32('w'), f32(1, 2, 3, 4, 5, 6.5));
      assert.deepEqual(r.info('logit_scale').shape, []);
      assert.deepEqual(r.readFloat32('logit_scale'), f32(2.6592));
      assert.deepEqual(r.readFloat32('empty'), new Float32Array(0));
      assert.equal(r.info('h').dtype, 'F16');
      assert.deepEqual(r.readFloat32('h'), roundToF16InPlace(f32(0.1, -0.2, 1e-30)));
      assert.deepEqual(r.readI64('ids'), new BigInt64Array([0n, 1n, 76n]));
      // Alignment: every F32/I64 tensor starts at a multiple of its size in the file.
      for (const t of r.tensors.values()) {
        const abs = 8 + r.headerLength + t.begin;
        if (t.dtype === 'F32') assert.equal(abs % 4, 0, t.name);
        if (t.dtype === 'I64') assert.equal(abs % 8, 0, t.name);
      }
      assert.throws(
        () => r.readFloat32('ids'),
        (e: unknown) => e instanceof CheckpointError && /ids.*I64.*F32/.test(e.message),
      );
    } finally {
      r.close();
    }
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp-')),
      [],
      'no temp files left',
    );
  });

  test('F16 file round trip equals F16-rounded values', () => {
    const p = path('rt16');
    const v = new Float32Array(1000).map((_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
    writeSafetensors(p, new Map([['v', { shape: [10, 100], data: v }]]), { dtype: 'F16' });
    const { tensors } = readSafetensors(p);
    assert.equal(tensors.get('v')!.dtype, 'F16');
    assert.deepEqual(tensors.get('v')!.data, roundToF16InPlace(v.slice()));
  });

  test('byte-exact layout: dtype-descending then name order, contiguous offsets, space padding', () => {
    const p = path('exact');
    writeSafetensors(
      p,
      new Map<string, TensorToWrite>([
        ['b', { shape: [2], data: f32(1, -2) }],
        ['a', { shape: [1], data: f32(1), dtype: 'F16' }],
        ['c', { shape: [], data: f32(0.5) }],
      ]),
    );
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"c":{"dtype":"F32","shape":[],"data_offsets":[8,12]},' +
      '"a":{"dtype":"F16","shape":[1],"data_offsets":[12,14]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const data = new Uint8Array(14);
    const dv = new DataView(data.buffer);
    dv.setFloat32(0, 1, true);
    dv.setFloat32(4, -2, true);
    dv.setFloat32(8, 0.5, true);
    dv.setUint16(12, 0x3c00, true);
    assert.deepEqual(new Uint8Array(readFileSync(p)), craft(null, data, padded));
  });

  test('overwrite is atomic and replaces the old file', () => {
    const p = path('over');
    writeSafetensors(p, new Map([['x', { shape: [1], data: f32(1) }]]));
    writeSafetensors(p, new Map([['y', { shape: [2], data: f32(2, 3) }]]));
    const { tensors } = readSafetensors(p);
    assert.deepEqual([...tensors.keys()], ['y']);
  });

  test('writer rejects data that does not match the shape', () => {
    assert.throws(
      () => writeSafetensors(path(), new Map([['x', { shape: [2, 2], data: f32(1, 2, 3) }]])),
      (e: unknown) => e instanceof CheckpointError && /'x'.*\[2, 2\].*3 values/.test(e.message),
    );
  });

  test('BF16 read', () => {
    const data = new Uint8Array(6);
    const dv = new DataView(data.buffer);
    [0x3f80, 0xc040, 0x4049].forEach((b, i) => dv.setUint16(2 * i, b, true));
    const p = writeBytes(craft({ t: { dtype: 'BF16', shape: [3], data_offsets: [0, 6] } }, data), 'bf16');
    const r = SafetensorsReader.open(p);
    assert.deepEqual(r.readFloat32('t'), f32(1, -3, 3.140625));
    r.close();
  });

  test('F16 read of a hand-made file', () => {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint16(0, 0x3c00, true);
    new DataView(data.buffer).setUint16(2, 0xc100, true);
    const p = writeBytes(craft({ t: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, data), 'f16');
    const r = SafetensorsReader.open(p);
    assert.deepEqual(r.readFloat32('t'), f32(1, -2.5));
    r.close();
  });

  test('reading a misaligned F32 tensor from another writer still works', () => {
    const data = new Uint8Array(6);
    new DataView(data.buffer).setFloat32(2, 7.25, true);
    const p = writeBytes(
      craft(
        {
          h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
          f: { dtype: 'F32', shape: [1], data_offsets: [2, 6] },
        },
        data,
        '{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"f":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}',
      ),
    );
    const r = SafetensorsReader.open(p);
    assert.deepEqual(r.readFloat32('f'), f32(7.25));
    r.close();
  });

  test('unsupported dtype is rejected only when its data is requested', () => {
    const p = writeBytes(craft({ t: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)));
    const r = SafetensorsReader.open(p);
    assert.throws(
      () => r.readFloat32('t'),
      (e: unknown) =>
        e instanceof CheckpointError && e.message.includes(p) && e.message.includes("'t'") && e.message.includes('I32'),
    );
    r.close();
  });
});

describe('safetensors reader rejects bad files', () => {
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);

  test('file shorter than 8 bytes', () => expectBad(writeBytes(new Uint8Array(5)), 'too small', '5 bytes'));

  test('empty file', () => expectBad(writeBytes(new Uint8Array(0)), 'too small'));

  test('header length above 100,000,000', () => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, 100_000_001n, true);
    expectBad(writeBytes(b), 'header length 100000001', 'limit');
  });

  test('header length past end of file (truncated header)', () => {
    const full = craft(ok, eight);
    expectBad(writeBytes(full.subarray(0, 20)), 'past the end of the file', 'file size 20');
  });

  test('truncated data', () => {
    const full = craft(ok, eight);
    expectBad(writeBytes(full.subarray(0, full.length - 3)), "'t'", 'past the end', 'truncated');
  });

  test('bad JSON', () => expectBad(writeBytes(craft(null, eight, '{"t": {"dtype": "F32",')), 'not valid JSON'));

  test('not UTF-8', () => {
    const b = craft(null, new Uint8Array(0), '{"xx":1}');
    b[10] = 0xff;
    b[11] = 0xfe;
    expectBad(writeBytes(b), 'not valid UTF-8');
  });

  test('header that is not an object', () => expectBad(writeBytes(craft([1, 2])), 'must be a JSON object'));

  test('entry missing dtype / shape / data_offsets', () => {
    expectBad(writeBytes(craft({ t: { shape: [2], data_offsets: [0, 8] } }, eight)), "'t'", "missing 'dtype'");
    expectBad(writeBytes(craft({ t: { dtype: 'F32', data_offsets: [0, 8] } }, eight)), "'t'", "missing 'shape'");
    expectBad(writeBytes(craft({ t: { dtype: 'F32', shape: [2] } }, eight)), "'t'", "missing 'data_offsets'");
  });

  test('unknown dtype', () =>
    expectBad(
      writeBytes(craft({ t: { dtype: 'F128', shape: [2], data_offsets: [0, 8] } }, eight)),
      "'t'",
      'unknown dtype "F128"',
    ));

  test('bad shape values', () =>
    expectBad(writeBytes(craft({ t: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, eight)), "'t'", 'shape'));

  test('END < BEGIN', () =>
    expectBad(
      writeBytes(craft({ t: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, eight)),
      "'t'",
      'end before they begin',
    ));

  test('shape x dtype != byte length', () =>
    expectBad(
      writeBytes(craft({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight)),
      "'t'",
      'needs 12 bytes',
      'hold 8',
    ));

  test('overlapping offsets', () =>
    expectBad(
      writeBytes(
        craft(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          new Uint8Array(12),
        ),
      ),
      "'b'",
      'overlaps',
      "'a'",
    ));

  test('gap between tensors', () =>
    expectBad(
      writeBytes(
        craft(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
          },
          new Uint8Array(12),
        ),
      ),
      "'b'",
      'gap',
      'expected BEGIN = 4',
    ));

  test('first tensor not at offset 0', () =>
    expectBad(
      writeBytes(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight)),
      "'a'",
      'gap',
      'offset 0',
    ));

  test('offsets past the data buffer', () =>
    expectBad(
      writeBytes(craft({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight)),
      'past the end',
      'holds 8 bytes',
    ));

  test('trailing garbage after the last tensor', () =>
    expectBad(writeBytes(craft(ok, new Uint8Array(11))), 'trailing', '3 bytes'));

  test('duplicate tensor names', () =>
    expectBad(
      writeBytes(
        craft(
          null,
          new Uint8Array(8),
          '{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        ),
      ),
      "duplicate entry 't'",
    ));

  test('__metadata__ with a non-string value', () =>
    expectBad(writeBytes(craft({ __metadata__: { format: 1 }, ...ok }, eight)), "__metadata__ field 'format'"));

  test('missing file', () => expectBad(join(dir, 'nope.safetensors'), 'cannot open'));
});
