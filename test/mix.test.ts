// builtin:fashion-mix: the spec opens it, items alternate scenes and single Fashion-MNIST items, captions follow the
// grammar (class name present, no evaluation-template words), the same on every call, splits disjoint by source image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDataset } from '../src/data/spec.ts';
import { FASHION_CLASSNAMES } from '../src/data/fashion.ts';
import { MIX_COUNTS, singleItem } from '../src/data/mix.ts';
import type { PairsDataset } from '../src/data/dataset.ts';

test('fashion-mix: sizes, interleaving, grammar, determinism', () => {
  const ds = openDataset('builtin:fashion-mix:train').dataset as PairsDataset;
  assert.equal(ds.kind, 'pairs');
  assert.equal(ds.size, MIX_COUNTS.train);
  assert.equal((openDataset('builtin:fashion-mix:all').dataset).size, MIX_COUNTS.train + MIX_COUNTS.val + MIX_COUNTS.test);
  const scene = ds.get(0), single = ds.get(1);
  assert.equal(scene.image.kind === 'rgb' && scene.image.width, 96);
  assert.equal(single.image.kind === 'rgb' && single.image.width, 28);
  assert.deepEqual(ds.get(1), single);
  const banned = /\b(itap|bad|origami|video|game|art|small)\b/;
  for (let i = 1; i < 400; i += 2) {
    const c = ds.get(i).captions[0]!;
    const s = singleItem('train', i);
    assert.equal(c, s.caption);
    assert.ok(c.includes(FASHION_CLASSNAMES[s.label]!), c);
    assert.ok(!banned.test(c), `evaluation-template word in "${c}"`);
    if (s.dark) assert.match(c, /\bdark\b/);
  }
});

test('fashion-mix: single items of different splits come from disjoint source images', () => {
  const seen = (split: 'train' | 'test') => new Set(Array.from({ length: 300 }, (_, k) => {
    const s = singleItem(split, 2 * k + 1);
    return `${s.label}:${s.index}`;
  }));
  const a = seen('train'), b = seen('test');
  for (const k of b) assert.ok(!a.has(k), `${k} in both splits`);
});
