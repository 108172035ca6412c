// Teacher outputs computed once: the frozen teacher's per-item outputs that the distillation losses need (image and
// text embeddings, i.e. the inputs of its similarity logits, and its residual streams after the matched layers),
// kept per training item so that a later epoch, a resumed run or another compress stage reuses them instead of
// running the teacher again. Dims: B pairs, T tokens, Tv vision tokens, C width, E projection dim.
//
// Keys. An item's key hashes the teacher's identity (all weights, geometry and the GEMM precision) and the item's
// model inputs exactly as the teacher sees them: its token ids up to its length (right padding excluded, so the key
// does not depend on the longest caption of the batch) and its preprocessed pixels. Data identity, the
// preprocessing (resize, crop, mean/std) and any augmentation are therefore part of the key by construction: a
// changed file, preprocessor setting or augmented view is a different key, never a stale hit.
//
// Storage. An in-memory LRU bounded in bytes; with a folder, every entry is also written there (atomically, one
// file per item under a subfolder named by the teacher's key), so evicted entries and later processes read it back.
// A text stream is stored for the item's own rows only (rows past its length are padding, which the hidden-state
// loss does not read); when assembled into a batch those rows are zero.
import { totalmem } from 'node:os';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShapeError } from '../errors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { toStateDict } from '../model/state-dict.ts';
import type { ClipModel } from '../model/types.ts';
import type { Tower } from '../model/workspace.ts';

const FORMAT = 'mope-clip-teacher-cache-v1';

/** The model inputs of B pairs (the shape of train/step.ts's TrainBatch). */
export interface TrainBatch {
  B: number;
  T: number;
  /** Token ids [B,T], right-padded. */
  ids: Int32Array;
  /** [B,T] 1 = token, 0 = padding; null/absent = no padding. */
  attentionMask?: ArrayLike<number> | null;
  /** Preprocessed pixels [B,ch,S,S]. */
  pixels: Float32Array;
}

/** The teacher's outputs for a batch, as TrainStep uses them. */
export interface TeacherOutputs {
  image: Float32Array; // [B,E]
  text: Float32Array; // [B,E]
  /** Streams after teacher layers map[j], each [B,T,C] (text) / [B,Tv,C] (vision); null when not needed. */
  textHidden: Float32Array[] | null;
  visionHidden: Float32Array[] | null;
}

/** Which teacher layers' streams are needed per tower (the layer map m(j); absent = none). */
export type LayerNeeds = Partial<Record<Tower, number[]>>;

/** One item's cached outputs; hidden maps a teacher layer to its stream rows ([len,C] text, [Tv,C] vision). */
interface Entry {
  image: Float32Array;
  text: Float32Array;
  hidden: Record<Tower, Map<number, Float32Array>>;
  bytes: number;
}

/**
 * Default in-memory bound of the CLI and the demo: an eighth of the machine's memory, at most 4 GiB; with a disk
 * folder (`withDir`) a thirty-second, at most 512 MiB. With a folder the operating system's page cache already keeps
 * the recently written and read entry files in memory (and gives that memory back under pressure), so a large own
 * copy only duplicates it; and a real-size run's entries (≈ 1.8 MB per ViT-B/32 image with all streams, 16,000
 * items per distil stage) overflow any memory bound anyway, so the disk copy is the one that gets hits. Measured in
 * docs/scale.md: the 3 GiB default took the real-size compress run's peak to 8.0 GiB.
 */
export function defaultTeacherCacheBytes(withDir = false, total = totalmem()): number {
  return withDir ? Math.min(512 * 2 ** 20, Math.floor(total / 32)) : Math.min(4 * 2 ** 30, Math.floor(total / 8));
}

export interface TeacherCacheOptions {
  /** Folder for the disk copy (null = memory only). */
  dir?: string | null;
  /** In-memory bound in bytes (default 1 GiB). */
  memoryBytes?: number;
  /**
   * Caches already open, by teacher key: TeacherCache.open returns the one for the same teacher and precision
   * instead of a new one, so its in-memory entries serve every run that shares the map (a study's runs distil from
   * one teacher on the same items).
   */
  shared?: Map<string, TeacherCache>;
}

export interface TeacherCacheStats {
  hits: number;
  diskHits: number;
  misses: number;
  memoryBytes: number;
  entries: number;
}

/** Hash of what decides the teacher's outputs: geometry, every weight, the GEMM precision. */
export function teacherKey(teacher: ClipModel, precision = 'fp32'): string {
  const h = createHash('sha256');
  h.update(FORMAT);
  h.update(JSON.stringify({ config: teacher.config, precision }));
  for (const [name, t] of toStateDict(teacher)) {
    h.update(name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex').slice(0, 24);
}

/** Token count of item b (its mask's ones; all T without a mask). */
function itemLength(batch: TrainBatch, b: number): number {
  const m = batch.attentionMask;
  if (!m) return batch.T;
  let n = 0;
  for (let t = 0; t < batch.T; t++) if (m[b * batch.T + t]! > 0) n++;
  return n;
}

function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Rows `idx` of batch as a new batch (same T). */
export function subBatch(batch: TrainBatch, idx: number[]): TrainBatch {
  const { T } = batch,
    P = batch.pixels.length / batch.B;
  const ids = new Int32Array(idx.length * T),
    pixels = new Float32Array(idx.length * P);
  const am = batch.attentionMask ? new Float32Array(idx.length * T) : null;
  idx.forEach((b, i) => {
    ids.set(batch.ids.subarray(b * T, (b + 1) * T), i * T);
    pixels.set(batch.pixels.subarray(b * P, (b + 1) * P), i * P);
    if (am) for (let t = 0; t < T; t++) am[i * T + t] = batch.attentionMask![b * T + t]!;
  });
  return { B: idx.length, T, ids, attentionMask: am, pixels };
}

/** Per-item teacher outputs: memory LRU plus an optional folder. */
export class TeacherCache {
  readonly key: string;
  readonly dir: string | null;
  private readonly limit: number;
  private readonly mem = new Map<string, Entry>();
  private bytes = 0;
  readonly stats: TeacherCacheStats = { hits: 0, diskHits: 0, misses: 0, memoryBytes: 0, entries: 0 };

  /** The cache of opts.shared for this teacher and precision, or a new one (added to opts.shared). */
  static open(teacher: ClipModel, opts: TeacherCacheOptions = {}, precision = 'fp32'): TeacherCache {
    const key = teacherKey(teacher, precision);
    const hit = opts.shared?.get(key);
    if (hit) return hit;
    const c = new TeacherCache(teacher, opts, precision, key);
    opts.shared?.set(key, c);
    return c;
  }

  constructor(teacher: ClipModel, opts: TeacherCacheOptions = {}, precision = 'fp32', key?: string) {
    this.key = key ?? teacherKey(teacher, precision);
    this.dir = opts.dir ? join(opts.dir, this.key) : null;
    this.limit = opts.memoryBytes ?? 1 << 30;
  }

  /** Key of item b of batch. */
  itemKey(batch: TrainBatch, b: number): string {
    const len = itemLength(batch, b),
      P = batch.pixels.length / batch.B;
    const h = createHash('sha256');
    h.update(this.key);
    h.update(`${len}:${P}:`);
    h.update(bytesOf(batch.ids.subarray(b * batch.T, b * batch.T + len)));
    h.update(bytesOf(batch.pixels.subarray(b * P, (b + 1) * P)));
    return h.digest('hex').slice(0, 32);
  }

  /**
   * The teacher outputs of `batch`: cached items are read, the others computed by `compute` on a sub-batch of just
   * those items (one call) and stored. `needs` names the teacher layers whose streams are wanted (in map order).
   */
  outputs(
    batch: TrainBatch,
    needs: LayerNeeds,
    E: number,
    C: Record<Tower, number>,
    Tv: number,
    compute: (sub: TrainBatch) => TeacherOutputs,
  ): TeacherOutputs {
    const { B, T } = batch;
    const keys = Array.from({ length: B }, (_, b) => this.itemKey(batch, b));
    const entries: (Entry | null)[] = keys.map((k) => this.lookup(k, needs));
    const missing = entries.flatMap((e, b) => (e ? [] : [b]));
    this.stats.hits += B - missing.length;
    this.stats.misses += missing.length;
    if (missing.length > 0) {
      const sub = compute(subBatch(batch, missing));
      missing.forEach((b, i) => {
        const len = itemLength(batch, b);
        const e: Entry = {
          image: sub.image.slice(i * E, (i + 1) * E),
          text: sub.text.slice(i * E, (i + 1) * E),
          hidden: { text: new Map(), vision: new Map() },
          bytes: 0,
        };
        const ct = C.text,
          cv = C.vision;
        needs.text?.forEach((l, j) => e.hidden.text.set(l, sub.textHidden![j]!.slice(i * T * ct, (i * T + len) * ct)));
        needs.vision?.forEach((l, j) =>
          e.hidden.vision.set(l, sub.visionHidden![j]!.slice(i * Tv * cv, (i + 1) * Tv * cv)),
        );
        entries[b] = e;
        this.store(keys[b]!, e);
      });
    }
    const out: TeacherOutputs = {
      image: new Float32Array(B * E),
      text: new Float32Array(B * E),
      textHidden: needs.text ? needs.text.map(() => new Float32Array(B * T * C.text)) : null,
      visionHidden: needs.vision ? needs.vision.map(() => new Float32Array(B * Tv * C.vision)) : null,
    };
    entries.forEach((e, b) => {
      out.image.set(e!.image, b * E);
      out.text.set(e!.text, b * E);
      needs.text?.forEach((l, j) => out.textHidden![j]!.set(e!.hidden.text.get(l)!, b * T * C.text));
      needs.vision?.forEach((l, j) => {
        const s = e!.hidden.vision.get(l)!;
        if (s.length !== Tv * C.vision) {
          throw new ShapeError(`teacher cache: vision stream of ${s.length} values, expected Tv·C = ${Tv * C.vision}`);
        }
        out.visionHidden![j]!.set(s, b * Tv * C.vision);
      });
    });
    this.stats.memoryBytes = this.bytes;
    this.stats.entries = this.mem.size;
    return out;
  }

  private lookup(k: string, needs: LayerNeeds): Entry | null {
    let e = this.mem.get(k) ?? null;
    if (e) {
      this.mem.delete(k); // LRU: re-insert as newest
      this.mem.set(k, e);
    } else if (this.dir && existsSync(join(this.dir, `${k}.bin`))) {
      e = decode(readFileSync(join(this.dir, `${k}.bin`)));
      if (e) {
        this.stats.diskHits++;
        this.remember(k, e);
      }
    }
    if (!e) return null;
    for (const tw of ['text', 'vision'] as const) {
      for (const l of needs[tw] ?? []) if (!e.hidden[tw].has(l)) return null;
    }
    return e;
  }

  private store(k: string, e: Entry): void {
    const file = this.dir ? join(this.dir, `${k}.bin`) : null;
    const prev = this.mem.get(k) ?? (file && existsSync(file) ? decode(readFileSync(file)) : null);
    // keep the layers an earlier request stored (another stage may map to other teacher layers)
    for (const tw of ['text', 'vision'] as const) {
      for (const [l, s] of prev?.hidden[tw] ?? []) if (!e.hidden[tw].has(l)) e.hidden[tw].set(l, s);
    }
    e.bytes = entryBytes(e);
    this.remember(k, e);
    if (file) writeFileAtomic(file, encode(e));
  }

  private remember(k: string, e: Entry): void {
    const old = this.mem.get(k);
    if (old) {
      this.bytes -= old.bytes;
      this.mem.delete(k);
    }
    e.bytes = entryBytes(e);
    if (e.bytes > this.limit) return;
    this.mem.set(k, e);
    this.bytes += e.bytes;
    for (const [ok, oe] of this.mem) {
      if (this.bytes <= this.limit) break;
      this.mem.delete(ok);
      this.bytes -= oe.bytes;
    }
  }
}

function entryBytes(e: Entry): number {
  let n = e.image.byteLength + e.text.byteLength;
  for (const tw of ['text', 'vision'] as const) for (const s of e.hidden[tw].values()) n += s.byteLength;
  return n;
}

/** File: 4-byte header length, JSON header {format, parts: [[name, count]]}, then the float32 parts in order. */
function encode(e: Entry): Uint8Array {
  const parts: [string, Float32Array][] = [
    ['image', e.image],
    ['text', e.text],
  ];
  for (const tw of ['text', 'vision'] as const) for (const [l, s] of e.hidden[tw]) parts.push([`${tw}:${l}`, s]);
  const head = Buffer.from(JSON.stringify({ format: FORMAT, parts: parts.map(([n, a]) => [n, a.length]) }));
  const pad = (4 - ((4 + head.length) % 4)) % 4;
  const total = 4 + head.length + pad + parts.reduce((s, [, a]) => s + a.byteLength, 0);
  const buf = new Uint8Array(total);
  new DataView(buf.buffer).setUint32(0, head.length + pad, true);
  buf.set(head, 4);
  buf.fill(0x20, 4 + head.length, 4 + head.length + pad);
  let at = 4 + head.length + pad;
  for (const [, a] of parts) {
    buf.set(bytesOf(a), at);
    at += a.byteLength;
  }
  return buf;
}

/** Parses a cache file; null when it is not one (a damaged file is a miss, recomputed and rewritten). */
function decode(buf: Buffer): Entry | null {
  try {
    const n = buf.readUInt32LE(0);
    const head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as { format: string; parts: [string, number][] };
    if (head.format !== FORMAT) return null;
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 4 + n, buf.byteOffset + buf.length));
    const e: Entry = {
      image: new Float32Array(0),
      text: new Float32Array(0),
      hidden: { text: new Map(), vision: new Map() },
      bytes: 0,
    };
    let at = 0;
    for (const [name, count] of head.parts) {
      if (at + count > data.length) return null;
      const a = data.slice(at, at + count);
      at += count;
      if (name === 'image') e.image = a;
      else if (name === 'text') e.text = a;
      else {
        const [tw, l] = name.split(':');
        if (tw !== 'text' && tw !== 'vision') return null;
        e.hidden[tw].set(Number(l), a);
      }
    }
    return at === data.length ? e : null;
  } catch {
    return null;
  }
}
