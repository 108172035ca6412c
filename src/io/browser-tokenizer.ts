// The browser page's tokenizer (bundled by scripts/build-web.mjs into web/tokenizer.js): a parsed tokenizer.json
// in, [BOS, …, EOS] ids and right-padded int64 batches out. The cleaning and BPE are src/io/clip-bpe.ts's, the
// same code the Node tokenizer runs, so ids agree by construction.
import { BOS_TOKEN, BpeEncoder, EOS_TOKEN } from './clip-bpe.ts';

interface TokenizerJson {
  model?: { vocab?: Record<string, number>; merges?: Array<string | [string, string]> };
}

export class ClipTokenizer {
  private readonly core: BpeEncoder;

  constructor(
    vocab: Record<string, number>,
    merges: Array<string | [string, string]>,
    readonly contextLength = 77,
  ) {
    const encoder = new Map(Object.entries(vocab));
    const pairs = merges.map((m) => (Array.isArray(m) ? m : (m.split(' ') as [string, string])));
    const bosId = encoder.get(BOS_TOKEN),
      eosId = encoder.get(EOS_TOKEN);
    if (bosId === undefined || eosId === undefined)
      throw new Error(`tokenizer.json lacks ${BOS_TOKEN} or ${EOS_TOKEN}`);
    this.core = new BpeEncoder(encoder, pairs, { bosId, eosId });
  }

  /** From a parsed tokenizer.json (HF fast-tokenizer layout, as mope-clip export writes it). */
  static fromTokenizerJson(json: TokenizerJson, contextLength = 77): ClipTokenizer {
    const m = json?.model;
    if (!m?.vocab || !Array.isArray(m.merges)) throw new Error('tokenizer.json: expected model.vocab and model.merges');
    return new ClipTokenizer(m.vocab, m.merges, contextLength);
  }

  get bosId(): number {
    return this.core.bosId;
  }

  get eosId(): number {
    return this.core.eosId;
  }

  /** [BOS, ...content, EOS]; over-long text keeps its first contextLength − 2 content tokens. */
  encode(text: string): number[] {
    const content = this.core.encodeContent(text, this.contextLength - 2).slice(0, this.contextLength - 2);
    return [this.core.bosId, ...content, this.core.eosId];
  }

  /** Right-padded batch (pad = EOS, as HF): { ids, mask } as BigInt64Array [B,S], with the rows. */
  encodeBatch(texts: string[]): { ids: BigInt64Array; mask: BigInt64Array; B: number; S: number; rows: number[][] } {
    const rows = texts.map((t) => this.encode(t));
    const S = Math.max(...rows.map((r) => r.length));
    const B = rows.length;
    const ids = new BigInt64Array(B * S).fill(BigInt(this.core.eosId));
    const mask = new BigInt64Array(B * S);
    rows.forEach((r, b) =>
      r.forEach((id, t) => {
        ids[b * S + t] = BigInt(id);
        mask[b * S + t] = 1n;
      }),
    );
    return { ids, mask, B, S, rows };
  }
}
