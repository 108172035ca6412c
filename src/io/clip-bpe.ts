// CLIP's text → token ids, with no Node.js dependency: cleaning (NFC, HTML-unescape twice, whitespace collapse,
// lowercase), the CLIP pre-tokeniser and OpenAI's byte-level BPE loop. src/io/tokenizer.ts (Node: file loaders,
// padding, decoding) builds on it, and the browser page's web/tokenizer.js is bundled from
// src/io/browser-tokenizer.ts, which imports this file: the two cannot drift apart.
import { decodeHTML } from 'entities';

export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';
export const END_OF_WORD = '</w>';

let byteTable: string[] | undefined;

/** OpenAI's bytes_to_unicode as an array indexed by byte; printable bytes map to themselves. */
export function bytesToUnicode(): readonly string[] {
  if (byteTable) return byteTable;
  const table = new Array<string>(256);
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  byteTable = table;
  return table;
}

// ---------------------------------------------------------------------------------------------
// Text cleaning. OpenAI: ftfy.fix_text → html.unescape ×2 → strip → \s+ → " " → strip → lower().
// ftfy is not reproduced (no mojibake repair, quote uncurling or width folding), as in HF's fast
// tokenizer; we keep its final NFC step. "Whitespace" is Python's str.isspace set, which is what
// the reference's re `\s` means (JS `\s` differs: it adds U+FEFF and lacks U+001C–U+001F, U+0085).
// ---------------------------------------------------------------------------------------------

const WS = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${WS}]+`, 'gu');
/** The CLIP pre-tokeniser, alternatives in reference order; case-insensitive like the reference. */
export const PRE_TOKEN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`,
  'giu',
);

// Python html._invalid_charrefs: C1 controls are read as windows-1252, NUL and surrogates become U+FFFD.
const CP1252 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function numericRef(num: number): string {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252[num - 0x80]!;
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  const invalid =
    (num >= 0x1 && num <= 0x8) ||
    num === 0xb ||
    (num >= 0xe && num <= 0x1f) ||
    num === 0x7f ||
    (num >= 0xfdd0 && num <= 0xfdef) ||
    (num & 0xfffe) === 0xfffe;
  return invalid ? '' : String.fromCodePoint(num);
}

/**
 * Python's html.unescape. Numeric references follow Python's own rules (which drop some code points the HTML
 * spec keeps); named ones use the `entities` package's full HTML5 table (2,231 names), including the longest
 * legacy-name prefix for references without ';' ("&ampx" → "&x"), as Python does. Unknown names stay as they are.
 */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (whole: string, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      return numericRef(hex ? parseInt(digits, 16) : parseInt(digits, 10));
    }
    return decodeHTML(whole);
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
// Byte-level BPE

const utf8 = new TextEncoder();

/** A vocabulary and merge ranks, encoding cleaned pieces to ids with a bounded cache. */
export class BpeEncoder {
  readonly bosId: number;
  readonly eosId: number;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly byteEncoder = bytesToUnicode();

  /** `bosId`/`eosId` must be the vocabulary's <|startoftext|> and <|endoftext|> ids (unknown symbols map to EOS). */
  constructor(
    readonly encoder: ReadonlyMap<string, number>,
    merges: ReadonlyArray<readonly [string, string]>,
    ids: { bosId: number; eosId: number },
    private readonly cacheSize = 50_000,
  ) {
    this.bosId = ids.bosId;
    this.eosId = ids.eosId;
    merges.forEach(([a, b], rank) => {
      const key = a + ' ' + b; // symbols never contain a space: byte 0x20 maps to "Ġ"
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
  }

  /** Content ids of one text (no BOS/EOS, no truncation); stops early once `limit` ids are reached. */
  encodeContent(text: string, limit = Infinity): number[] {
    const out: number[] = [];
    const cleaned = cleanText(text);
    PRE_TOKEN.lastIndex = 0;
    for (let m = PRE_TOKEN.exec(cleaned); m !== null && out.length < limit; m = PRE_TOKEN.exec(cleaned)) {
      const piece = m[0];
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        ids = this.pieceIds(piece);
        if (this.cache.size >= this.cacheSize) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    }
    PRE_TOKEN.lastIndex = 0;
    return out;
  }

  private pieceIds(piece: string): number[] {
    if (piece === BOS_TOKEN) return [this.bosId];
    if (piece === EOS_TOKEN) return [this.eosId];
    const bytes = utf8.encode(piece);
    const word: string[] = new Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) word[i] = this.byteEncoder[bytes[i]!]!;
    return this.bpe(word).map((sym) => this.encoder.get(sym) ?? this.eosId);
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
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i]!);
          i += 1;
        }
      }
      word = merged;
    }
    return word;
  }
}
