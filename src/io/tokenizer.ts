// CLIP BPE tokenizer: text cleaning, pre-tokenisation, byte-level BPE, loaders (bundled / vocab+merges / tokenizer.json) and writers. Dims: B texts, T = contextLength tokens.
import { existsSync } from 'node:fs';
import { readJsonBounded } from './read-bounded.ts';
import { LIMITS } from './limits.ts';
import { join } from 'node:path';
import { CheckpointError, ConfigError, DataError } from '../errors.ts';
import {
  BOS_TOKEN,
  type BpeVocab,
  bytesToUnicode,
  checkMergesAgainstVocab,
  END_OF_WORD,
  EOS_TOKEN,
  readBundledBpe,
  readMergesTxt,
  readTokenizerJson,
  readVocabJson,
} from './bpe-vocab.ts';

export {
  BOS_TOKEN,
  BUNDLED_BPE_PATH,
  type BpeVocab,
  EOS_TOKEN,
} from './bpe-vocab.ts';

/** Context length of every public CLIP model (= text max_position_embeddings). */
export const CLIP_CONTEXT_LENGTH = 77;
export { CLIP_SPLIT_PATTERN } from './bpe-vocab.ts';

// ---------------------------------------------------------------------------------------------
// Text cleaning. OpenAI: ftfy.fix_text → html.unescape ×2 → strip → \s+ → " " → strip → lower().
// ftfy is not reproduced (no mojibake repair, quote uncurling or width folding), as in HF's fast
// tokenizer; we keep its final NFC step. "Whitespace" is Python's str.isspace set, which is what
// the reference's re `\s` means (JS `\s` differs: it adds U+FEFF and lacks U+001C–U+001F, U+0085).
// ---------------------------------------------------------------------------------------------

const WS = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${WS}]+`, 'gu');
/** The CLIP pre-tokeniser (§3.2), alternatives in reference order; case-insensitive like the reference. */
const PRE_TOKEN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`,
  'giu',
);

// Named references: a common subset of HTML5's table. `true` = also accepted without ';' (HTML5 legacy names).
const NAMED: Record<string, [string, boolean]> = {};
for (const spec of (
  'amp:1:26 lt:1:3c gt:1:3e quot:1:22 apos:0:27 nbsp:1:a0 copy:1:a9 reg:1:ae trade:0:2122 hellip:0:2026 ' +
  'mdash:0:2014 ndash:0:2013 lsquo:0:2018 rsquo:0:2019 ldquo:0:201c rdquo:0:201d laquo:1:ab raquo:1:bb ' +
  'deg:1:b0 middot:1:b7 times:1:d7 divide:1:f7 euro:0:20ac pound:1:a3 yen:1:a5 cent:1:a2 sect:1:a7 para:1:b6 ' +
  'bull:0:2022 shy:1:ad iexcl:1:a1 iquest:1:bf eacute:1:e9 egrave:1:e8 ecirc:1:ea aacute:1:e1 agrave:1:e0 ' +
  'acirc:1:e2 oacute:1:f3 ograve:1:f2 ocirc:1:f4 uacute:1:fa ugrave:1:f9 iacute:1:ed igrave:1:ec ntilde:1:f1 ' +
  'ccedil:1:e7 uuml:1:fc ouml:1:f6 auml:1:e4 euml:1:eb iuml:1:ef szlig:1:df Eacute:1:c9 Agrave:1:c0 ' +
  'Ccedil:1:c7 Uuml:1:dc Ouml:1:d6 Auml:1:c4 AMP:1:26 LT:1:3c GT:1:3e QUOT:1:22 COPY:1:a9 REG:1:ae'
).split(' ')) {
  const [name, legacy, hex] = spec.split(':');
  NAMED[name] = [String.fromCodePoint(parseInt(hex, 16)), legacy === '1'];
}
// Python html._invalid_charrefs: C1 controls are read as windows-1252, NUL and surrogates become U+FFFD.
const CP1252 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function numericRef(num: number): string {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  const invalid =
    (num >= 0x1 && num <= 0x8) || num === 0xb || (num >= 0xe && num <= 0x1f) || num === 0x7f ||
    (num >= 0xfdd0 && num <= 0xfdef) || (num & 0xfffe) === 0xfffe;
  return invalid ? '' : String.fromCodePoint(num);
}

/**
 * Python's html.unescape for numeric references (all of them, same edge rules) and a common subset of
 * named ones; unknown names are left as they are.
 */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (whole: string, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      return numericRef(hex ? parseInt(digits, 16) : parseInt(digits, 10));
    }
    const exact = ref.endsWith(';') ? NAMED[ref.slice(0, -1)] : NAMED[ref]?.[1] ? NAMED[ref] : undefined;
    if (exact) return exact[0];
    // Longest legacy name that prefixes the reference ("&ampx" → "&x"), as the HTML5 spec and Python do.
    for (let k = ref.length - 1; k > 1; k--) {
      const hit = NAMED[ref.slice(0, k)];
      if (hit && hit[1]) return hit[0] + ref.slice(k);
    }
    return whole;
  });
}

/** The reference's cleaning: NFC, HTML-unescape twice, collapse whitespace runs to one space, strip, lowercase. */
export function cleanText(text: string): string {
  let t = text.normalize('NFC');
  t = htmlUnescape(htmlUnescape(t));
  t = t.replace(WS_RUN, ' ');
  if (t.startsWith(' ')) t = t.slice(1);
  if (t.endsWith(' ')) t = t.slice(0, -1);
  return t.toLowerCase();
}

/** Splits cleaned text into the pieces BPE runs on (specials, contractions, letter runs, single digits, symbol runs). */
export function preTokenize(cleaned: string): string[] {
  return cleaned.match(PRE_TOKEN) ?? [];
}

// ---------------------------------------------------------------------------------------------

export interface ClipTokenizerOptions {
  /** Tokens per sequence including BOS and EOS (default 77). */
  contextLength?: number;
  /** Words kept in the BPE cache before it is cleared (default 50,000). */
  cacheSize?: number;
  /** Where the vocabulary came from, for messages (a path or "bundled"). */
  source?: string;
}

export interface EncodeOptions {
  /** Overrides the tokenizer's contextLength for this call. */
  contextLength?: number;
  /** true (default): keep contextLength−2 content tokens then EOS. false: throw DataError when too long. */
  truncate?: boolean;
}

/** A right-padded [B, T] batch, as the text tower and the ONNX text model take it. */
export interface PaddedBatch {
  B: number;
  T: number;
  /** [B, T] token ids, padded with padId. */
  ids: Int32Array;
  /** [B, T] 1 for BOS, content and EOS; 0 for padding. */
  attentionMask: Int32Array;
  /** [B] position of EOS in each row (where CLIP pools). */
  eosIndex: Int32Array;
}

function checkContextLength(n: number, where: string): number {
  if (!Number.isInteger(n) || n < 2) {
    throw new ConfigError(`${where}: context length must be an integer ≥ 2 (room for BOS and EOS), found ${n}.`);
  }
  return n;
}

export class ClipTokenizer {
  readonly contextLength: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Unknown symbols map here (HF: unk_token = <|endoftext|>); never hit with the CLIP vocab. */
  readonly unkId: number;
  /** HF's pad id (<|endoftext|>); OpenAI's clip.tokenize pads with 0 instead. Pooling ignores the choice. */
  readonly padId: number;
  readonly source: string;
  private readonly encoder: Map<string, number>;
  private readonly decoder: Map<number, string>;
  private readonly mergeList: ReadonlyArray<readonly [string, string]>;
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, number[]>();
  private readonly cacheSize: number;
  private readonly byteEncoder: readonly string[];
  private byteDecoder?: Map<string, number>;

  constructor(vocab: BpeVocab, options: ClipTokenizerOptions = {}) {
    this.source = options.source ?? 'tokenizer';
    this.contextLength = checkContextLength(options.contextLength ?? CLIP_CONTEXT_LENGTH, this.source);
    this.cacheSize = Math.max(1, options.cacheSize ?? 50_000);
    this.encoder = vocab.encoder;
    this.decoder = new Map();
    for (const [t, id] of vocab.encoder) this.decoder.set(id, t);
    this.mergeList = vocab.merges;
    this.ranks = new Map();
    vocab.merges.forEach(([a, b], rank) => {
      const key = a + ' ' + b; // symbols never contain a space: byte 0x20 maps to "Ġ"
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    const bos = vocab.encoder.get(BOS_TOKEN);
    const eos = vocab.encoder.get(EOS_TOKEN);
    if (bos === undefined || eos === undefined) {
      throw new CheckpointError(
        `${this.source}: the vocabulary lacks ${bos === undefined ? BOS_TOKEN : EOS_TOKEN}; ` +
          `a CLIP vocab has ${BOS_TOKEN} (49406) and ${EOS_TOKEN} (49407).`,
      );
    }
    this.bosId = bos;
    this.eosId = eos;
    this.unkId = eos;
    this.padId = eos;
    this.byteEncoder = bytesToUnicode();
  }

  /** The OpenAI vocabulary vendored with the package (49,408 tokens, 48,894 merges). */
  static fromBundledVocab(options: ClipTokenizerOptions = {}): ClipTokenizer {
    return new ClipTokenizer(readBundledBpe(), { source: 'bundled CLIP BPE vocabulary', ...options });
  }

  /** A Hugging Face slow-tokenizer pair: vocab.json (token → id) and merges.txt ("#version" header, "A B" lines). */
  static fromVocabMerges(vocabJsonPath: string, mergesTxtPath: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    const vocab: BpeVocab = { encoder: readVocabJson(vocabJsonPath), merges: readMergesTxt(mergesTxtPath) };
    checkMergesAgainstVocab(vocab, mergesTxtPath, vocabJsonPath);
    return new ClipTokenizer(vocab, { source: vocabJsonPath, ...options });
  }

  /** A Hugging Face fast tokenizer.json (merges as "A B" strings or [A, B] arrays). Its normalizer is not interpreted: CLIP cleaning is applied. */
  static fromTokenizerJson(path: string, options: ClipTokenizerOptions = {}): ClipTokenizer {
    const vocab = readTokenizerJson(path);
    checkMergesAgainstVocab(vocab, path, path);
    return new ClipTokenizer(vocab, { source: path, ...options });
  }

  /** The largest id the tokenizer can produce. */
  get maxId(): number {
    let m = -1;
    for (const id of this.encoder.values()) if (id > m) m = id;
    return m;
  }

  get vocabSize(): number {
    return this.encoder.size;
  }

  /** Merges in rank order. */
  get merges(): ReadonlyArray<readonly [string, string]> {
    return this.mergeList;
  }

  tokenToId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.decoder.get(id);
  }

  /** [token, id] pairs in id order. */
  vocabEntries(): Array<[string, number]> {
    return [...this.encoder].sort((x, y) => x[1] - y[1]);
  }

  /** Content ids of one text (no BOS/EOS, no truncation); stops early once `limit` ids are reached. */
  private encodeContent(text: string, limit = Infinity): number[] {
    const out: number[] = [];
    const cleaned = cleanText(text);
    PRE_TOKEN.lastIndex = 0;
    for (let m = PRE_TOKEN.exec(cleaned); m !== null && out.length < limit; m = PRE_TOKEN.exec(cleaned)) {
      const piece = m[0];
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        ids = this.bpeIds(piece);
        if (this.cache.size >= this.cacheSize) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    }
    PRE_TOKEN.lastIndex = 0;
    return out;
  }

  private bpeIds(piece: string): number[] {
    if (piece === BOS_TOKEN) return [this.bosId];
    if (piece === EOS_TOKEN) return [this.eosId];
    const bytes = Buffer.from(piece, 'utf8');
    const word: string[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) word[i] = this.byteEncoder[bytes[i]];
    return this.bpe(word).map((sym) => this.encoder.get(sym) ?? this.unkId);
  }

  /** OpenAI's BPE loop: merge the lowest-ranked adjacent pair everywhere (left to right) until none is ranked. */
  private bpe(chars: string[]): string[] {
    let word = chars;
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i];
          second = word[i + 1];
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]);
          i += 1;
        }
      }
      word = merged;
    }
    return word;
  }

  /** BPE token strings of a text, without BOS/EOS (for inspection). */
  tokenize(text: string): string[] {
    return this.encodeContent(text).map((id) => this.decoder.get(id) ?? EOS_TOKEN);
  }

  /** [BOS, …content…, EOS]; over-long text keeps its first contextLength−2 content tokens, then EOS. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new DataError(`tokenizer: expected a caption string, found ${typeof text}.`);
    const T = options.contextLength === undefined ? this.contextLength : checkContextLength(options.contextLength, 'encode');
    const truncate = options.truncate ?? true;
    const content = this.encodeContent(text, truncate ? T - 2 : Infinity);
    if (content.length > T - 2) {
      if (!truncate) {
        throw new DataError(
          `caption ${JSON.stringify(text.slice(0, 60))}${text.length > 60 ? '…' : ''} has ${content.length} BPE tokens, ` +
            `more than the ${T - 2} that fit in a context of ${T}; shorten it or allow truncation.`,
        );
      }
      content.length = T - 2;
    }
    return [this.bosId, ...content, this.eosId];
  }

  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, options));
  }

  /** Encodes and right-pads to T = contextLength (or `length`) with padId (default <|endoftext|>, as HF). */
  encodeBatchPadded(texts: readonly string[], options: EncodeOptions & { padId?: number } = {}): PaddedBatch {
    const T = options.contextLength ?? this.contextLength;
    const padId = options.padId ?? this.padId;
    const B = texts.length;
    const ids = new Int32Array(B * T).fill(padId);
    const attentionMask = new Int32Array(B * T);
    const eosIndex = new Int32Array(B);
    texts.forEach((text, b) => {
      const row = this.encode(text, { ...options, contextLength: T });
      ids.set(row, b * T);
      attentionMask.fill(1, b * T, b * T + row.length);
      eosIndex[b] = row.length - 1;
    });
    return { B, T, ids, attentionMask, eosIndex };
  }

  /**
   * Ids back to text: byte-level decode (invalid UTF-8 → U+FFFD), "</w>" → space, outer spaces stripped (as HF).
   * BOS/EOS are dropped unless skipSpecialTokens is false.
   */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    if (!this.byteDecoder) {
      this.byteDecoder = new Map(this.byteEncoder.map((ch, b) => [ch, b]));
    }
    const bytes: number[] = [];
    const pushText = (s: string) => {
      for (const b of Buffer.from(s, 'utf8')) bytes.push(b);
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = this.decoder.get(id);
      if (tok === undefined) {
        throw new DataError(`decode: id ${id} at position ${i} is not in the vocabulary (ids 0…${this.vocabSize - 1}).`);
      }
      if (id === this.bosId || id === this.eosId) {
        if (!skip) pushText(tok);
        continue;
      }
      const eow = tok.endsWith(END_OF_WORD);
      const body = eow ? tok.slice(0, -END_OF_WORD.length) : tok;
      for (const ch of body) {
        const b = this.byteDecoder.get(ch);
        if (b === undefined) pushText(ch);
        else bytes.push(b);
      }
      if (eow) bytes.push(0x20);
    }
    return Buffer.from(bytes).toString('utf8').replace(/^ +| +$/g, '');
  }
}

// ---------------------------------------------------------------------------------------------
// Folder loading (HF checkpoint layout). Writers live in bpe-vocab.ts and are re-exported above.
// ---------------------------------------------------------------------------------------------

export interface LoadTokenizerOptions {
  /** Explicit context length; wins over tokenizer_config.json. */
  contextLength?: number;
  /** The text tower's max_position_embeddings: caps the context length (default 77). */
  maxPositions?: number;
  /** The text tower's vocab_size (config.json): every tokenizer id must be below it. */
  modelVocabSize?: number;
}

/** tokenizer_config.json model_max_length when it is a usable integer (HF writes 1e30 for "unbounded"). */
function readModelMaxLength(dir: string): number | undefined {
  const path = join(dir, 'tokenizer_config.json');
  if (!existsSync(path)) return undefined;
  const cfg = readJsonBounded(path, 'tokenizer config', LIMITS.configBytes, CheckpointError, 'the HF tokenizer config object');
  const v = (cfg as Record<string, unknown> | null)?.model_max_length;
  return typeof v === 'number' && Number.isInteger(v) && v >= 2 && v < 1e9 ? v : undefined;
}

/**
 * Loads a checkpoint folder's tokenizer: tokenizer.json if present, else vocab.json + merges.txt.
 * Context length = options.contextLength, else min(tokenizer_config model_max_length, maxPositions), else maxPositions (77).
 */
export function loadTokenizerFromFolder(dir: string, options: LoadTokenizerOptions = {}): ClipTokenizer {
  const maxPositions = options.maxPositions ?? CLIP_CONTEXT_LENGTH;
  let contextLength: number;
  if (options.contextLength !== undefined) {
    contextLength = checkContextLength(options.contextLength, dir);
    if (contextLength > maxPositions) {
      throw new ConfigError(
        `${dir}: context length ${contextLength} exceeds the text model's ${maxPositions} position embeddings; use at most ${maxPositions}.`,
      );
    }
  } else {
    contextLength = Math.min(readModelMaxLength(dir) ?? maxPositions, maxPositions);
  }
  const tokJson = join(dir, 'tokenizer.json');
  const vocabJson = join(dir, 'vocab.json');
  const mergesTxt = join(dir, 'merges.txt');
  const checked = (tok: ClipTokenizer, file: string): ClipTokenizer => {
    const V = options.modelVocabSize;
    if (V !== undefined && tok.maxId >= V) {
      throw new CheckpointError(
        `${file}: holds token id ${tok.maxId}, but config.json says the text model has vocab_size ${V} (ids 0…${V - 1}); ` +
          'the tokenizer does not belong to this model.',
      );
    }
    return tok;
  };
  if (existsSync(tokJson)) return checked(ClipTokenizer.fromTokenizerJson(tokJson, { contextLength }), tokJson);
  if (existsSync(vocabJson) && existsSync(mergesTxt)) return checked(ClipTokenizer.fromVocabMerges(vocabJson, mergesTxt, { contextLength }), vocabJson);
  const missing = existsSync(vocabJson) ? 'merges.txt' : existsSync(mergesTxt) ? 'vocab.json' : 'vocab.json and merges.txt';
  throw new CheckpointError(
    `${dir}: no tokenizer found. Looked for tokenizer.json, or vocab.json + merges.txt (missing: ${missing}). ` +
      'Copy them from the original checkpoint, or save the model again with mope-clip.',
  );
}
