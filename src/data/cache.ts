// On-disk embedding cache (--cache DIR): Float32 rows [N,E] stored as KEY.bin (raw little-endian float32)
// plus KEY.json (shape, kept item indices, what the key was made of), keyed by sha256 of everything that
// determines the embeddings: model weights and config, data spec + limit + seed, preprocessing or token ids.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';

const CACHE_VERSION = 1;

const fileHashes = new Map<string, { size: number; mtimeMs: number; hash: string }>();

/** sha256 (hex) of a file's bytes, streamed; memoised per process by (path, size, mtime). */
export async function hashFile(path: string): Promise<string> {
  const st = statSync(path);
  const hit = fileHashes.get(path);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.hash;
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path, { highWaterMark: 1 << 22 })
      .on('data', (b) => h.update(b))
      .on('end', () => resolve())
      .on('error', reject);
  });
  const hash = h.digest('hex');
  fileHashes.set(path, { size: st.size, mtimeMs: st.mtimeMs, hash });
  return hash;
}

/**
 * Identity of a checkpoint folder's weights: sha256 over config.json and every *.safetensors file (and
 * the safetensors index), in name order. Any change to weights or config gives a new identity.
 */
export async function modelFingerprint(dir: string): Promise<string> {
  const names = readdirSync(dir)
    .filter((n) => n === 'config.json' || n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json'))
    .sort();
  const h = createHash('sha256');
  for (const n of names) h.update(`${n}\0${await hashFile(join(dir, n))}\0`);
  return h.digest('hex');
}

/** Stable JSON (sorted object keys) so that equal key parts always hash the same. */
export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (ArrayBuffer.isView(v)) return stableStringify(Array.from(v as unknown as ArrayLike<number>));
  if (Array.isArray(v)) return '[' + v.map(stableStringify).join(',') + ']';
  const o = v as Record<string, unknown>;
  return (
    '{' +
    Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => JSON.stringify(k) + ':' + stableStringify(o[k]))
      .join(',') +
    '}'
  );
}

/**
 * The cache key: sha256 of the stable JSON of `parts`. Callers put in everything the embeddings depend on,
 * e.g. {tower: 'image', model: await modelFingerprint(dir), data: spec, limit, seed, skipBad, preprocess: cfg}
 * or {tower: 'text', model, ids: sha256 of the token ids}.
 */
export function cacheKey(parts: Record<string, unknown>): string {
  return createHash('sha256')
    .update(stableStringify({ v: CACHE_VERSION, ...parts }))
    .digest('hex');
}

/** sha256 of token id sequences (for text-embedding keys). */
export function hashIds(ids: number[][]): string {
  const h = createHash('sha256');
  for (const s of ids) h.update(new Uint8Array(Int32Array.from(s).buffer)).update('|');
  return h.digest('hex');
}

export interface CachedEmbeddings {
  /** [rows, dim] */
  data: Float32Array;
  rows: number;
  dim: number;
  /** Data set indices the rows belong to (for image sets where --skip-bad dropped items). */
  indices?: number[];
  /** Free-form description stored beside the key (data spec, model dir, created). */
  meta?: Record<string, unknown>;
}

/** The cached embeddings for `key`, or null when absent or unreadable (a damaged entry is a miss). */
export function readCache(dir: string, key: string): CachedEmbeddings | null {
  const bin = join(dir, `${key}.bin`),
    js = join(dir, `${key}.json`);
  if (!existsSync(bin) || !existsSync(js)) return null;
  try {
    const info = JSON.parse(readFileSync(js, 'utf8')) as {
      version: number;
      rows: number;
      dim: number;
      indices?: number[];
      meta?: Record<string, unknown>;
    };
    const buf = readFileSync(bin);
    if (info.version !== CACHE_VERSION || buf.length !== info.rows * info.dim * 4) return null;
    const data = new Float32Array(info.rows * info.dim);
    new Uint8Array(data.buffer).set(buf);
    return { data, rows: info.rows, dim: info.dim, indices: info.indices, meta: info.meta };
  } catch {
    return null;
  }
}

/** Writes both files atomically (the .json last, so a reader never sees a .json without its .bin). */
export function writeCache(dir: string, key: string, e: CachedEmbeddings): void {
  if (e.data.length !== e.rows * e.dim)
    throw new RangeError(`writeCache: data has ${e.data.length} floats, expected rows·dim = ${e.rows}·${e.dim}`);
  writeFileAtomic(join(dir, `${key}.bin`), new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength));
  writeJsonAtomic(join(dir, `${key}.json`), {
    version: CACHE_VERSION,
    rows: e.rows,
    dim: e.dim,
    indices: e.indices,
    meta: { created: new Date().toISOString(), ...e.meta },
  });
}

/** readCache, else compute and writeCache. `dir` undefined disables caching. `hit` tells which happened. */
export async function cachedEmbeddings(
  dir: string | undefined,
  key: string,
  compute: () => Promise<CachedEmbeddings>,
): Promise<CachedEmbeddings & { hit: boolean }> {
  if (dir !== undefined) {
    const c = readCache(dir, key);
    if (c) return { ...c, hit: true };
  }
  const e = await compute();
  if (dir !== undefined) writeCache(dir, key, e);
  return { ...e, hit: false };
}
