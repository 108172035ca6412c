// builtin:fashion-scenes — image-text pairs composed deterministically from Fashion-MNIST: a 96×96 canvas
// holding one to three items at named positions, each large or small and bright or dark, captioned by a grammar.
//
// Canvas: 96×96 RGB (grey, R = G = B), black background, split into a 3×3 grid of 32×32 cells. Positions
// are the four corner cells and the centre cell ("top left", "top right", "bottom left", "bottom right",
// "centre"); items never share a cell, so they never overlap. Size: large = 30 px, small = 18 px (bilinear
// resize of the 28×28 source), placed at a random offset inside its cell. Brightness: bright = source
// intensities ×1.0, dark = ×0.4.
// Caption grammar:  scene := item | item " and " item | item ", " item " and " item
//                   item  := "a " size " " brightness " " class " in the " position
// e.g. "a large bright sneaker in the top left and a small dark bag in the bottom right". Items are listed
// in the order they were drawn (random), so word order carries the pairing of attributes and places.
// Scene i of split s is generated on demand from a PRNG seeded by hash("fashion-scenes:s:i"): the same on
// every run and machine, never all in memory. Sizes: train 20,000, val 1,000, test 1,000 scenes. Source images
// of split s come only from the Fashion-MNIST split s (see fashion.ts), so train, val and test are built
// from disjoint source images. `builtin:fashion-scenes` without a split means test; `:all` = train, val, test.
import { checkIndex, hashString, Rng, type PairItem, type PairsDataset } from './dataset.ts';
import {
  FASHION_CLASSNAMES,
  FASHION_SIZE,
  fashionImage,
  loadFashionClass,
  splitRange,
  SPLITS,
  type Split,
} from './fashion.ts';

export const SCENE_SIZE = 96;
const CELL = 32;
export const SCENE_COUNTS: Readonly<Record<Split, number>> = Object.freeze({ train: 20000, val: 1000, test: 1000 });

export const POSITIONS = ['top left', 'top right', 'bottom left', 'bottom right', 'centre'] as const;
export type Position = (typeof POSITIONS)[number];
/** Grid cell (column, row) of each position. */
const CELLS: Record<Position, [number, number]> = {
  'top left': [0, 0],
  'top right': [2, 0],
  'bottom left': [0, 2],
  'bottom right': [2, 2],
  centre: [1, 1],
};
export const SIZES = { large: 30, small: 18 } as const;
export const BRIGHTNESS = { bright: 1.0, dark: 0.4 } as const;

export interface SceneObject {
  label: number;
  /** Source index of the Fashion-MNIST image within its class. */
  index: number;
  position: Position;
  size: keyof typeof SIZES;
  brightness: keyof typeof BRIGHTNESS;
  /** Top-left corner of the item on the canvas. */
  x: number;
  y: number;
}

export interface SceneLayout {
  split: Split;
  i: number;
  objects: SceneObject[];
  caption: string;
}

export function sceneLayout(split: Split, i: number): SceneLayout {
  checkIndex(i, SCENE_COUNTS[split]);
  const rng = new Rng(hashString(`fashion-scenes:${split}:${i}`));
  const n = 1 + rng.int(3);
  const free: Position[] = [...POSITIONS];
  const objects: SceneObject[] = [];
  for (let k = 0; k < n; k++) {
    const position = free.splice(rng.int(free.length), 1)[0];
    const label = rng.int(10);
    const [a, b] = splitRange(loadFashionClass(label).count, split);
    const index = a + rng.int(b - a);
    const size = rng.next() < 0.5 ? 'large' : 'small';
    const brightness = rng.next() < 0.5 ? 'bright' : 'dark';
    const px = SIZES[size];
    const [cx, cy] = CELLS[position];
    const x = cx * CELL + rng.int(CELL - px + 1);
    const y = cy * CELL + rng.int(CELL - px + 1);
    objects.push({ label, index, position, size, brightness, x, y });
  }
  return { split, i, objects, caption: sceneCaption(objects) };
}

export function sceneCaption(objects: Pick<SceneObject, 'label' | 'position' | 'size' | 'brightness'>[]): string {
  const parts = objects.map((o) => `a ${o.size} ${o.brightness} ${FASHION_CLASSNAMES[o.label]} in the ${o.position}`);
  if (parts.length === 1) return parts[0];
  return parts.slice(0, -1).join(', ') + ' and ' + parts[parts.length - 1];
}

/** Bilinear resize of a square grey image (half-pixel centres, edge clamped). */
function resizeGrey(src: Uint8Array, s: number, d: number): Float32Array {
  const out = new Float32Array(d * d);
  const scale = s / d;
  for (let y = 0; y < d; y++) {
    const fy = Math.min(Math.max((y + 0.5) * scale - 0.5, 0), s - 1);
    const y0 = Math.floor(fy),
      y1 = Math.min(y0 + 1, s - 1),
      wy = fy - y0;
    for (let x = 0; x < d; x++) {
      const fx = Math.min(Math.max((x + 0.5) * scale - 0.5, 0), s - 1);
      const x0 = Math.floor(fx),
        x1 = Math.min(x0 + 1, s - 1),
        wx = fx - x0;
      const top = src[y0 * s + x0] * (1 - wx) + src[y0 * s + x1] * wx;
      const bot = src[y1 * s + x0] * (1 - wx) + src[y1 * s + x1] * wx;
      out[y * d + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

/** Renders a layout to 96×96 RGB bytes. */
export function renderScene(layout: SceneLayout): Uint8Array {
  const grey = new Uint8Array(SCENE_SIZE * SCENE_SIZE);
  for (const o of layout.objects) {
    const d = SIZES[o.size];
    const img = resizeGrey(fashionImage(o.label, o.index), FASHION_SIZE, d);
    const k = BRIGHTNESS[o.brightness];
    for (let y = 0; y < d; y++) {
      for (let x = 0; x < d; x++) {
        const v = Math.round(img[y * d + x] * k);
        const p = (o.y + y) * SCENE_SIZE + o.x + x;
        if (v > grey[p]) grey[p] = v;
      }
    }
  }
  const rgb = new Uint8Array(grey.length * 3);
  for (let p = 0; p < grey.length; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = grey[p];
  return rgb;
}

export function openFashionScenes(spec: string, split: Split | 'all' = 'test'): PairsDataset {
  const parts: Split[] = split === 'all' ? [...SPLITS] : [split];
  const size = parts.reduce((s, p) => s + SCENE_COUNTS[p], 0);
  // Load the class files up front so that get() never stalls mid-stream on a 15 MB JSON parse.
  for (let label = 0; label < 10; label++) loadFashionClass(label);
  return {
    kind: 'pairs',
    spec,
    size,
    get(i: number): PairItem {
      checkIndex(i, size);
      let p = 0;
      while (i >= SCENE_COUNTS[parts[p]]) i -= SCENE_COUNTS[parts[p++]];
      const layout = sceneLayout(parts[p], i);
      return {
        image: { kind: 'rgb', data: renderScene(layout), width: SCENE_SIZE, height: SCENE_SIZE },
        captions: [layout.caption],
        ref: `fashion-scenes:${parts[p]} #${i}`,
      };
    },
  };
}
