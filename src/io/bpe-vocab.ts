// CLIP BPE vocabulary data: byte↔unicode table, the vendored OpenAI merges file, vocab.json / merges.txt / tokenizer.json parsing.
import { createHash } from 'node:crypto';
import { readRegularText, parseJsonBounded } from './read-bounded.ts';
import { LIMITS } from './limits.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { CheckpointError } from '../errors.ts';

import { BOS_TOKEN, bytesToUnicode, END_OF_WORD, EOS_TOKEN } from './clip-bpe.ts';

export { BOS_TOKEN, bytesToUnicode, END_OF_WORD, EOS_TOKEN } from './clip-bpe.ts';
/** Merges OpenAI's file contributes to the vocab: 49152 − 256 − 2. */
export const CLIP_NUM_MERGES = 48_894;
export const CLIP_VOCAB_SIZE = 49_408;
/** The pre-tokeniser pattern as HF's CLIPConverter writes it into tokenizer.json (no special-token literals). */
export const CLIP_SPLIT_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** The vendored OpenAI vocabulary (MIT, licence beside it); resolved from this module, not the CWD. */
export const BUNDLED_BPE_PATH = fileURLToPath(
  new URL('../../assets/clip-bpe/bpe_simple_vocab_16e6.txt.gz', import.meta.url),
);
export const BUNDLED_BPE_SHA256 = '924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a';

/** A BPE vocabulary: token → id, and the merges in rank order (rank = index). */
export interface BpeVocab {
  encoder: Map<string, number>;
  merges: Array<[string, string]>;
}

/** The 256 byte characters in bytes_to_unicode dict order: printable bytes first, then the rest (ids 0–255). */
export function byteVocabOrder(): string[] {
  const table = bytesToUnicode();
  const order: string[] = [];
  for (let b = 0; b < 256; b++) if (table[b].charCodeAt(0) < 256) order.push(table[b]);
  for (let b = 0; b < 256; b++) if (table[b].charCodeAt(0) >= 256) order.push(table[b]);
  return order;
}

/** Builds the 49,408-entry CLIP vocab from OpenAI's bpe_simple_vocab_16e6.txt.gz exactly as clip.simple_tokenizer does. */
export function readBundledBpe(path: string = BUNDLED_BPE_PATH): BpeVocab {
  let gz: Buffer;
  try {
    gz = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(
      `cannot read the bundled CLIP BPE vocabulary ${path}: ${(e as Error).message}. ` +
        'It ships in the package under assets/clip-bpe/; reinstall mope-clip.',
    );
  }
  if (path === BUNDLED_BPE_PATH) {
    const sha = createHash('sha256').update(gz).digest('hex');
    if (sha !== BUNDLED_BPE_SHA256) {
      throw new CheckpointError(
        `${path}: SHA-256 is ${sha}, expected ${BUNDLED_BPE_SHA256} (OpenAI's bpe_simple_vocab_16e6.txt.gz); the file is corrupt, reinstall mope-clip.`,
      );
    }
  }
  let text: string;
  try {
    text = gunzipSync(gz).toString('utf8');
  } catch (e) {
    throw new CheckpointError(
      `${path}: not a valid gzip file (${(e as Error).message}); expected OpenAI's bpe_simple_vocab_16e6.txt.gz.`,
    );
  }
  // Only the header and the first 48,894 merges are used: cut there before splitting the 262k-line file.
  let end = -1;
  for (let i = 0; i <= CLIP_NUM_MERGES && (end = text.indexOf('\n', end + 1)) !== -1; i++);
  const lines = (end === -1 ? text : text.slice(0, end)).split('\n');
  if (lines.length < CLIP_NUM_MERGES + 1) {
    throw new CheckpointError(
      `${path}: has ${lines.length} lines, expected at least ${CLIP_NUM_MERGES + 1} (a header and ${CLIP_NUM_MERGES} merges).`,
    );
  }
  const merges: Array<[string, string]> = [];
  for (let i = 1; i <= CLIP_NUM_MERGES; i++) merges.push(splitMerge(lines[i], path, i + 1));
  const tokens = byteVocabOrder();
  for (let i = 0; i < 256; i++) tokens.push(tokens[i] + END_OF_WORD);
  for (const [a, b] of merges) tokens.push(a + b);
  tokens.push(BOS_TOKEN, EOS_TOKEN);
  const encoder = new Map<string, number>();
  tokens.forEach((t, id) => encoder.set(t, id)); // as dict(zip(vocab, range)): a repeated token keeps its last id
  return { encoder, merges };
}

function splitMerge(line: string, file: string, lineNo: number): [string, string] {
  const sp = line.indexOf(' ');
  if (sp > 0 && sp < line.length - 1 && line.indexOf(' ', sp + 1) === -1 && !/[^\S ]/.test(line)) {
    return [line.slice(0, sp), line.slice(sp + 1)];
  }
  const parts = line.trim().split(/\s+/);
  if (parts.length !== 2 || parts[0] === '') {
    throw new CheckpointError(
      `${file} line ${lineNo}: expected a merge "A B" (two symbols separated by a space), found ${JSON.stringify(line)}.`,
    );
  }
  return [parts[0], parts[1]];
}

function readText(path: string, what: string): string {
  return readRegularText(path, what, LIMITS.tokenizerBytes, CheckpointError);
}

function parseJson(path: string, text: string, expected: string): unknown {
  return parseJsonBounded(text, path, CheckpointError, expected);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 60)}`;
}

/** token → id map from a JSON object, checking ids are distinct non-negative integers. */
/** Token ids are stored as int32 (model inputs), so no id may exceed this. */
export const MAX_TOKEN_ID = 2 ** 31 - 1;

function encoderFromObject(obj: unknown, file: string, field: string): Map<string, number> {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new CheckpointError(
      `${file}: ${field} should be a JSON object mapping token strings to integer ids, found ${describe(obj)}.`,
    );
  }
  const encoder = new Map<string, number>();
  const seen = new Map<number, string>();
  for (const [tok, id] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) {
      throw new CheckpointError(
        `${file}: ${field} entry ${JSON.stringify(tok)} has id ${describe(id)}, expected an integer in [0, ${MAX_TOKEN_ID}].`,
      );
    }
    const prev = seen.get(id);
    if (prev !== undefined) {
      throw new CheckpointError(
        `${file}: ${field} gives id ${id} to both ${JSON.stringify(prev)} and ${JSON.stringify(tok)}; ids must be distinct.`,
      );
    }
    seen.set(id, tok);
    encoder.set(tok, id);
  }
  if (encoder.size === 0)
    throw new CheckpointError(`${file}: ${field} is empty, expected the CLIP vocabulary (${CLIP_VOCAB_SIZE} entries).`);
  return encoder;
}

/** Reads a vocab.json (token → id). */
export function readVocabJson(path: string): Map<string, number> {
  const obj = parseJson(path, readText(path, 'vocab file'), 'a JSON object mapping token → id');
  return encoderFromObject(obj, path, 'the top-level object');
}

/**
 * Reads a merges.txt. Like HF's slow CLIPTokenizer: the first line is a "#version" header, and at most
 * 48,894 merges are used (the rest of a longer file is ignored).
 */
export function readMergesTxt(path: string): Array<[string, string]> {
  const lines = readText(path, 'merges file').split(/\r?\n/);
  const merges: Array<[string, string]> = [];
  const start = lines.length > 0 && lines[0].startsWith('#') ? 1 : 0;
  for (let i = start; i < lines.length && merges.length < CLIP_NUM_MERGES; i++) {
    if (lines[i].trim() === '') continue;
    merges.push(splitMerge(lines[i], path, i + 1));
  }
  if (merges.length === 0)
    throw new CheckpointError(`${path}: contains no merges, expected "#version: 0.2" then lines "A B".`);
  return merges;
}

/** What tokenizer.json contributes: the BPE model plus any added tokens missing from its vocab. */
export function readTokenizerJson(path: string): BpeVocab {
  const root = parseJson(path, readText(path, 'tokenizer file'), 'a Hugging Face tokenizer.json object');
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    throw new CheckpointError(`${path}: expected a Hugging Face tokenizer.json object, found ${describe(root)}.`);
  }
  const model = (root as Record<string, unknown>).model as Record<string, unknown> | undefined;
  if (model === null || typeof model !== 'object') {
    throw new CheckpointError(
      `${path}: field "model" should be an object with a BPE vocab and merges, found ${describe(model)}.`,
    );
  }
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new CheckpointError(
      `${path}: field "model.type" is ${JSON.stringify(model.type)}, expected "BPE" (CLIP uses byte-level BPE).`,
    );
  }
  if (model.end_of_word_suffix !== END_OF_WORD) {
    throw new CheckpointError(
      `${path}: field "model.end_of_word_suffix" is ${describe(model.end_of_word_suffix)}, expected "${END_OF_WORD}"; this is not a CLIP tokenizer.`,
    );
  }
  const prefix = model.continuing_subword_prefix;
  if (prefix !== undefined && prefix !== null && prefix !== '') {
    throw new CheckpointError(
      `${path}: field "model.continuing_subword_prefix" is ${describe(prefix)}, expected "" or null for CLIP.`,
    );
  }
  const encoder = encoderFromObject(model.vocab, path, 'field "model.vocab"');
  if (!Array.isArray(model.merges)) {
    throw new CheckpointError(
      `${path}: field "model.merges" should be an array of "A B" strings or [A, B] pairs, found ${describe(model.merges)}.`,
    );
  }
  const merges: Array<[string, string]> = model.merges.map((m: unknown, i: number): [string, string] => {
    if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp > 0 && sp === m.lastIndexOf(' ') && sp < m.length - 1) return [m.slice(0, sp), m.slice(sp + 1)];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return [m[0], m[1]];
    }
    throw new CheckpointError(
      `${path}: field "model.merges[${i}]" should be "A B" or ["A", "B"], found ${describe(m)}.`,
    );
  });
  const added = (root as Record<string, unknown>).added_tokens;
  if (Array.isArray(added)) {
    for (const t of added) {
      if (
        t &&
        typeof t === 'object' &&
        typeof t.content === 'string' &&
        Number.isInteger(t.id) &&
        !encoder.has(t.content)
      ) {
        if (t.id < 0 || t.id > MAX_TOKEN_ID) {
          throw new CheckpointError(
            `${path}: added token ${JSON.stringify(t.content)} has id ${t.id}, expected an integer in [0, ${MAX_TOKEN_ID}].`,
          );
        }
        encoder.set(t.content, t.id);
      }
    }
  }
  return { encoder, merges };
}

/** Checks that every merge's parts and product are vocab entries: catches vocab/merges files that do not belong together. */
export function checkMergesAgainstVocab(vocab: BpeVocab, mergesFile: string, vocabFile: string): void {
  const { encoder, merges } = vocab;
  for (let i = 0; i < merges.length; i++) {
    const [a, b] = merges[i];
    for (const t of [a, b, a + b]) {
      if (!encoder.has(t)) {
        throw new CheckpointError(
          `${mergesFile}: merge ${i + 1} "${a} ${b}" needs the token ${JSON.stringify(t)}, which ${vocabFile} lacks; ` +
            'the vocab and merges do not belong together.',
        );
      }
    }
  }
  for (const special of [BOS_TOKEN, EOS_TOKEN]) {
    if (!encoder.has(special)) {
      throw new CheckpointError(
        `${vocabFile}: has no ${special} entry; a CLIP vocab ends with ${BOS_TOKEN} (49406) and ${EOS_TOKEN} (49407).`,
      );
    }
  }
}

/** vocab.json text, entries in id order (JSON objects are unordered; id order keeps diffs readable). */
export function vocabJsonText(entries: ReadonlyArray<readonly [string, number]>): string {
  const body = entries.map(([t, id]) => `${JSON.stringify(t)}:${id}`).join(',');
  return `{${body}}\n`;
}

/** merges.txt text with the "#version: 0.2" header HF's slow tokenizer expects (it skips the first line). */
export function mergesTxtText(merges: ReadonlyArray<readonly [string, string]>): string {
  return '#version: 0.2\n' + merges.map(([a, b]) => `${a} ${b}`).join('\n') + '\n';
}
