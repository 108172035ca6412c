// CLIP BPE tokenizer for the browser page: reads an exported tokenizer.json (model.vocab, model.merges) and encodes
// like src/io/tokenizer.ts (NFC, HTML-unescape twice, Python-whitespace collapse, lowercase, CLIP pre-tokeniser,
// byte-level BPE with "</w>", [BOS, ..., EOS] truncated to the context length). Plain ES module, no dependencies.

const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';
const EOW = '</w>';

// Python str.isspace, which the reference's `\s` means (JS `\s` differs).
const WS = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${WS}]+`, 'gu');
const PRE_TOKEN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`,
  'giu',
);

// HTML named references (the same subset as src/io/tokenizer.ts); `true` = also accepted without ';'.
const NAMED = {};
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
const CP1252 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function numericRef(num) {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  const invalid =
    (num >= 0x1 && num <= 0x8) || num === 0xb || (num >= 0xe && num <= 0x1f) || num === 0x7f ||
    (num >= 0xfdd0 && num <= 0xfdef) || (num & 0xfffe) === 0xfffe;
  return invalid ? '' : String.fromCodePoint(num);
}

/** Python's html.unescape for numeric references and the named subset above. */
export function htmlUnescape(s) {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (whole, ref) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      return numericRef(parseInt(digits, hex ? 16 : 10));
    }
    const exact = ref.endsWith(';') ? NAMED[ref.slice(0, -1)] : NAMED[ref]?.[1] ? NAMED[ref] : undefined;
    if (exact) return exact[0];
    for (let k = ref.length - 1; k > 1; k--) {
      const hit = NAMED[ref.slice(0, k)];
      if (hit && hit[1]) return hit[0] + ref.slice(k);
    }
    return whole;
  });
}

/** The reference's cleaning: NFC, HTML-unescape twice, collapse whitespace runs, strip, lowercase. */
export function cleanText(text) {
  let t = htmlUnescape(htmlUnescape(text.normalize('NFC'))).replace(WS_RUN, ' ');
  if (t.startsWith(' ')) t = t.slice(1);
  if (t.endsWith(' ')) t = t.slice(0, -1);
  return t.toLowerCase();
}

/** OpenAI's bytes_to_unicode, indexed by byte. */
function bytesToUnicode() {
  const table = new Array(256);
  const printable = (b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = printable(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return table;
}

export class ClipTokenizer {
  /** @param {Record<string, number>} vocab @param {Array<string | [string, string]>} merges */
  constructor(vocab, merges, contextLength = 77) {
    this.encoder = new Map(Object.entries(vocab));
    this.ranks = new Map();
    merges.forEach((m, rank) => {
      const key = Array.isArray(m) ? m[0] + ' ' + m[1] : m;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    this.bosId = this.encoder.get(BOS);
    this.eosId = this.encoder.get(EOS);
    if (this.bosId === undefined || this.eosId === undefined) throw new Error(`tokenizer.json lacks ${BOS} or ${EOS}`);
    this.contextLength = contextLength;
    this.byteEncoder = bytesToUnicode();
    this.utf8 = new TextEncoder();
    this.cache = new Map();
  }

  /** From a parsed tokenizer.json (HF fast-tokenizer layout, as mope-clip export writes it). */
  static fromTokenizerJson(json, contextLength = 77) {
    if (!json?.model?.vocab || !Array.isArray(json.model.merges)) throw new Error('tokenizer.json: expected model.vocab and model.merges');
    return new ClipTokenizer(json.model.vocab, json.model.merges, contextLength);
  }

  bpe(word) {
    word[word.length - 1] += EOW;
    while (word.length > 1) {
      let best = Infinity, first = '', second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) { best = r; first = word[i]; second = word[i + 1]; }
      }
      if (best === Infinity) break;
      const merged = [];
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) { merged.push(first + second); i += 2; }
        else { merged.push(word[i]); i += 1; }
      }
      word = merged;
    }
    return word;
  }

  pieceIds(piece) {
    if (piece === BOS) return [this.bosId];
    if (piece === EOS) return [this.eosId];
    let ids = this.cache.get(piece);
    if (ids) return ids;
    const word = Array.from(this.utf8.encode(piece), (b) => this.byteEncoder[b]);
    ids = this.bpe(word).map((s) => this.encoder.get(s) ?? this.eosId);
    this.cache.set(piece, ids);
    return ids;
  }

  /** [BOS, ...content, EOS]; over-long text keeps its first contextLength − 2 content tokens. */
  encode(text) {
    const T = this.contextLength;
    const content = [];
    for (const piece of cleanText(text).match(PRE_TOKEN) ?? []) {
      for (const id of this.pieceIds(piece)) content.push(id);
      if (content.length >= T - 2) break;
    }
    content.length = Math.min(content.length, T - 2);
    return [this.bosId, ...content, this.eosId];
  }

  /** Right-padded batch (pad = EOS, as HF): { ids: BigInt64Array, mask: BigInt64Array, B, S }. */
  encodeBatch(texts) {
    const rows = texts.map((t) => this.encode(t));
    const S = Math.max(...rows.map((r) => r.length));
    const B = rows.length;
    const ids = new BigInt64Array(B * S).fill(BigInt(this.eosId));
    const mask = new BigInt64Array(B * S);
    rows.forEach((r, b) => r.forEach((id, t) => { ids[b * S + t] = BigInt(id); mask[b * S + t] = 1n; }));
    return { ids, mask, B, S, rows };
  }
}
