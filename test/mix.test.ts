// builtin:fashion-mix: the spec opens it, three scenes then one single Fashion-MNIST item, captions follow the
// grammar (class name present, no evaluation-template words), the same on every call, splits disjoint by source image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDataset } from '../src/data/spec.ts';
import { FASHION_CLASSNAMES } from '../src/data/fashion.ts';
import { isSingle, MIX_COUNTS, singleItem } from '../src/data/mix.ts';
import type { PairsDataset } from '../src/data/dataset.ts';

test('fashion-mix: sizes, interleaving, grammar, determinism', () => {
  const ds = openDataset('builtin:fashion-mix:train').dataset as PairsDataset;
  assert.equal(ds.kind, 'pairs');
  assert.equal(ds.size, MIX_COUNTS.train);
  assert.equal(
    openDataset('builtin:fashion-mix:all').dataset.size,
    MIX_COUNTS.train + MIX_COUNTS.val + MIX_COUNTS.test,
  );
  const scene = ds.get(0),
    single = ds.get(3);
  assert.ok(isSingle(3) && !isSingle(0) && !isSingle(4));
  assert.deepEqual(ds.get(4), {
    ...ds.get(4),
    captions: (openDataset('builtin:fashion-scenes:train').dataset as PairsDataset).get(3).captions,
  });
  assert.equal(scene.image.kind === 'rgb' && scene.image.width, 96);
  assert.equal(single.image.kind === 'rgb' && single.image.width, 28);
  assert.deepEqual(ds.get(3), single);
  const banned = /\b(itap|bad|origami|video|game|art|small)\b/;
  for (let i = 3; i < 800; i += 4) {
    const c = ds.get(i).captions[0]!;
    const s = singleItem('train', i);
    assert.equal(c, s.caption);
    assert.ok(c.includes(FASHION_CLASSNAMES[s.label]!), c);
    assert.ok(!banned.test(c), `evaluation-template word in "${c}"`);
    if (s.dark) assert.match(c, /\bdark\b/);
  }
});

test('fashion-mix: single items of different splits come from disjoint source images', () => {
  const seen = (split: 'train' | 'test') =>
    new Set(
      Array.from({ length: 300 }, (_, k) => {
        const s = singleItem(split, 4 * k + 3);
        return `${s.label}:${s.index}`;
      }),
    );
  const a = seen('train'),
    b = seen('test');
  for (const k of b) assert.ok(!a.has(k), `${k} in both splits`);
});
