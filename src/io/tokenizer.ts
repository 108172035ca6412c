// CLIP BPE tokenizer for Node: loaders (bundled / vocab+merges / tokenizer.json), padding and decoding over the
// shared cleaning and BPE of clip-bpe.ts. Dims: B texts, T = contextLength tokens.
import { existsSync } from 'node:fs';
import { readJsonBounded } from './read-bounded.ts';
import { LIMITS } from './limits.ts';
import { join } from 'node:path';
import { CheckpointError, ConfigError, DataError } from '../errors.ts';
import { BpeEncoder, bytesToUnicode } from './clip-bpe.ts';
import {
  BOS_TOKEN,
  type BpeVocab,
  checkMergesAgainstVocab,
  END_OF_WORD,
  EOS_TOKEN,
  readBundledBpe,
  readMergesTxt,
  readTokenizerJson,
  readVocabJson,
} from './bpe-vocab.ts';

export { BOS_TOKEN, BUNDLED_BPE_PATH, type BpeVocab, EOS_TOKEN } from './bpe-vocab.ts';

/** Context length of every public CLIP model (= text max_position_embeddings). */
export const CLIP_CONTEXT_LENGTH = 77;
export { CLIP_SPLIT_PATTERN } from './bpe-vocab.ts';

export { cleanText, htmlUnescape, preTokenize } from './clip-bpe.ts';

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
  private readonly core: BpeEncoder;
  private readonly byteEncoder: readonly string[];
  private byteDecoder?: Map<string, number>;

  constructor(vocab: BpeVocab, options: ClipTokenizerOptions = {}) {
    this.source = options.source ?? 'tokenizer';
    this.contextLength = checkContextLength(options.contextLength ?? CLIP_CONTEXT_LENGTH, this.source);
    this.encoder = vocab.encoder;
    this.decoder = new Map();
    for (const [t, id] of vocab.encoder) this.decoder.set(id, t);
    this.mergeList = vocab.merges;
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
    this.core = new BpeEncoder(
      vocab.encoder,
      vocab.merges,
      { bosId: bos, eosId: eos },
      Math.max(1, options.cacheSize ?? 50_000),
    );
  }

  /** The OpenAI vocabulary vendored with the package (49,408 tokens, 48,894 merges). */
  static fromBundledVocab(options: ClipTokenizerOptions = {}): ClipTokenizer {
    return new ClipTokenizer(readBundledBpe(), { source: 'bundled CLIP BPE vocabulary', ...options });
  }

  /** A Hugging Face slow-tokenizer pair: vocab.json (token → id) and merges.txt ("#version" header, "A B" lines). */
  static fromVocabMerges(
    vocabJsonPath: string,
    mergesTxtPath: string,
    options: ClipTokenizerOptions = {},
  ): ClipTokenizer {
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
    return this.core.encodeContent(text, limit);
  }

  /** BPE token strings of a text, without BOS/EOS (for inspection). */
  tokenize(text: string): string[] {
    return this.encodeContent(text).map((id) => this.decoder.get(id) ?? EOS_TOKEN);
  }

  /** [BOS, …content…, EOS]; over-long text keeps its first contextLength−2 content tokens, then EOS. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new DataError(`tokenizer: expected a caption string, found ${typeof text}.`);
    const T =
      options.contextLength === undefined ? this.contextLength : checkContextLength(options.contextLength, 'encode');
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
        throw new DataError(
          `decode: id ${id} at position ${i} is not in the vocabulary (ids 0…${this.vocabSize - 1}).`,
        );
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
    return Buffer.from(bytes)
      .toString('utf8')
      .replace(/^ +| +$/g, '');
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
  const cfg = readJsonBounded(
    path,
    'tokenizer config',
    LIMITS.configBytes,
    CheckpointError,
    'the HF tokenizer config object',
  );
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
  if (existsSync(vocabJson) && existsSync(mergesTxt))
    return checked(ClipTokenizer.fromVocabMerges(vocabJson, mergesTxt, { contextLength }), vocabJson);
  const missing = existsSync(vocabJson)
    ? 'merges.txt'
    : existsSync(mergesTxt)
      ? 'vocab.json'
      : 'vocab.json and merges.txt';
  throw new CheckpointError(
    `${dir}: no tokenizer found. Looked for tokenizer.json, or vocab.json + merges.txt (missing: ${missing}). ` +
      'Copy them from the original checkpoint, or save the model again with mope-clip.',
  );
}
