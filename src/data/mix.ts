// builtin:fashion-mix — the demo teacher's training pairs: fashion-scenes pairs mixed 3 : 1 with single Fashion-MNIST
// items (the whole 28×28 image, as zero-shot classification sees them) captioned by a small grammar of natural
// phrasings, so that the text tower learns to read a class name inside varied wording and not only inside the
// scene grammar (zero-shot prompts unlike every training caption fail), while most of the budget goes to scenes
// (retrieval needs many more pairs than classification).
//
// Item i of split s (n = fashion-scenes count of s): with g = ⌊i/4⌋, r = i mod 4: r < 3 → fashion-scenes scene
// (3g + r) mod n of split s with its own caption (so an epoch shows every scene three times); r = 3 → a single item
// drawn by a PRNG seeded with hash("fashion-mix:s:i"): a class, a source image of that class's split-s range (train,
// val and test stay disjoint, as in fashion.ts), bright (×1.0) or dark (×0.4), and a caption
//   single := [prefix] article [size] [brightness] class [suffix]
//   prefix  ∈ {"", "a photo of ", "a picture of ", "an image of ", "a close-up of ", "a grey photo of "}
//   article ∈ {"a ", "the ", "one "} (or none after an empty prefix), size ∈ {"", "large "}, suffix ∈ {"",
//   " on a black background", " in the centre"}; the brightness word is said when dark, and half the time when bright.
// Honest note: "a photo of …" is prompt-like wording; the evaluation prompts' own words (itap, bad, origami,
// video game, art, small) are never in these single-item captions ("small" occurs only in scene captions).
// Sizes: 4n items — train 80,000 (60,000 scene slots + 20,000 single items), val 4,000, test 4,000. `:all` = all three.
import { checkIndex, hashString, Rng, type PairItem, type PairsDataset } from './dataset.ts';
import {
  FASHION_CLASSNAMES,
  FASHION_SIZE,
  fashionImage,
  greyToRgb,
  loadFashionClass,
  splitRange,
  SPLITS,
  type Split,
} from './fashion.ts';
import { openFashionScenes, SCENE_COUNTS } from './scenes.ts';

export const MIX_COUNTS: Readonly<Record<Split, number>> = Object.freeze({
  train: 4 * SCENE_COUNTS.train,
  val: 4 * SCENE_COUNTS.val,
  test: 4 * SCENE_COUNTS.test,
});

/** Whether item i of the mix is a single Fashion-MNIST item (else a scene). */
export const isSingle = (i: number): boolean => i % 4 === 3;

const PREFIXES = ['', 'a photo of ', 'a picture of ', 'an image of ', 'a close-up of ', 'a grey photo of '] as const;
const ARTICLES = ['a ', 'the ', 'one '] as const;
const SUFFIXES = ['', ' on a black background', ' in the centre'] as const;

export interface SingleItem {
  label: number;
  /** Source index of the Fashion-MNIST image within its class. */
  index: number;
  dark: boolean;
  caption: string;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

/** The single item at index i (i mod 4 = 3) of split s of the mix. */
export function singleItem(split: Split, i: number): SingleItem {
  const rng = new Rng(hashString(`fashion-mix:${split}:${i}`));
  const label = rng.int(10);
  const [a, b] = splitRange(loadFashionClass(label).count, split);
  const index = a + rng.int(b - a);
  const dark = rng.next() < 0.5;
  const prefix = pick(rng, PREFIXES);
  // A bare class name ("sneaker") is allowed only without a prefix.
  const article = prefix === '' && rng.next() < 0.25 ? '' : pick(rng, ARTICLES);
  const size = rng.next() < 0.25 ? 'large ' : '';
  const bright = dark ? 'dark ' : rng.next() < 0.5 ? 'bright ' : '';
  const suffix = pick(rng, SUFFIXES);
  const caption = `${prefix}${article}${size}${bright}${FASHION_CLASSNAMES[label]}${suffix}`;
  return { label, index, dark, caption };
}

function renderSingle(s: SingleItem): Uint8Array {
  const src = fashionImage(s.label, s.index);
  if (!s.dark) return greyToRgb(src);
  const g = new Uint8Array(src.length);
  for (let p = 0; p < src.length; p++) g[p] = Math.round(src[p]! * 0.4);
  return greyToRgb(g);
}

export function openFashionMix(spec: string, split: Split | 'all' = 'test'): PairsDataset {
  const parts: Split[] = split === 'all' ? [...SPLITS] : [split];
  const size = parts.reduce((s, p) => s + MIX_COUNTS[p], 0);
  const scenes = new Map(parts.map((p) => [p, openFashionScenes(`builtin:fashion-scenes:${p}`, p)]));
  return {
    kind: 'pairs',
    spec,
    size,
    get(i: number): PairItem {
      checkIndex(i, size);
      let p = 0;
      while (i >= MIX_COUNTS[parts[p]!]) i -= MIX_COUNTS[parts[p++]!];
      const part = parts[p]!;
      if (!isSingle(i)) {
        const item = scenes.get(part)!.get((3 * Math.floor(i / 4) + (i % 4)) % SCENE_COUNTS[part]);
        return { ...item, ref: `fashion-mix:${part} #${i} (${item.ref})` };
      }
      const s = singleItem(part, i);
      return {
        image: { kind: 'rgb', data: renderSingle(s), width: FASHION_SIZE, height: FASHION_SIZE },
        captions: [s.caption],
        ref: `fashion-mix:${part} #${i} (fashion-mnist ${FASHION_CLASSNAMES[s.label]} #${s.index})`,
      };
    },
  };
}
