// Structural pruning tests: pruned model = dense model with the same modules masked (both towers, heads,
// FFN groups, layers), fewer parameters, save/reload with per-layer widths, MoPE = Z drop of the model with the
// module's weights deleted, magnitude against a direct state-dict computation, plan fractions and min-heads.
// Dims: see test/helpers/prune-fixtures.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { countParameters, loadCheckpoint, saveCheckpoint } from '../src/io/checkpoint.ts';
import { toStateDict } from '../src/model/state-dict.ts';
import { encodeImages, encodeTexts } from '../src/model/encode.ts';
import type { ClipModel } from '../src/model/types.ts';
import { magnitude } from '../src/prune/baselines.ts';
import { keepAll, keepMasks, type TowerKeep } from '../src/prune/masks.ts';
import { scoreMope } from '../src/prune/mope.ts';
import { enumerateModules, ffnGroupRange, moduleKey, type ModuleRef } from '../src/prune/modules.ts';
import { retrievalObjective } from '../src/prune/objective.ts';
import { makePlan, type PrunePlan } from '../src/prune/plan.ts';
import { runScore } from '../src/prune/score-run.ts';
import { checkScoresMatchModel, type ScoresFile } from '../src/prune/scores-file.ts';
import { pruneModel } from '../src/prune/structural.ts';
import { makeTempDir, removeDir } from './helpers/tiny.ts';
import { calibration, randomIds, randomPixels, rt, tinyModel } from './helpers/prune-fixtures.ts';
import { maxAbsDiff } from './helpers/compare.ts';

const model = tinyModel();
const pixels = randomPixels(5, 11),
  ids = randomIds(5, 12);

function embeds(m: ClipModel, plan?: PrunePlan) {
  const vm = plan?.vision ? keepMasks(m.config.vision, plan.vision) : undefined;
  const tm = plan?.text ? keepMasks(m.config.text, plan.text) : undefined;
  return {
    img: encodeImages(rt, m, pixels, 5, { batch: 2, masks: vm }),
    txt: encodeTexts(rt, m, ids, { batch: 2, masks: tm }),
  };
}

/** Vision: 3 layers × 3 heads, F 36; text: 3 layers × 4 heads, F 40. */
const plans: Record<string, PrunePlan> = {
  heads: {
    vision: { ...keepAll(model.config.vision), heads: [[0, 2], [1], [0, 1, 2]] },
    text: { ...keepAll(model.config.text), heads: [[3], [0, 1, 2, 3], [1, 2]] },
  },
  ffn: {
    vision: {
      ...keepAll(model.config.vision),
      ffn: [[0, 5, 6, 7, 35], [], Array.from({ length: 20 }, (_, i) => i + 3)],
    },
    text: { ...keepAll(model.config.text), ffn: [[1, 2, 39], Array.from({ length: 40 }, (_, i) => i), [7]] },
  },
  layers: {
    vision: { ...keepAll(model.config.vision), layers: [0, 2] },
    text: { ...keepAll(model.config.text), layers: [1] },
  },
  all: {
    vision: { heads: [[1], [0, 2], [2]], ffn: [[0, 1], [4, 9, 30], [8]], layers: [1, 2] },
    text: { heads: [[0, 1], [2], [0, 3]], ffn: [[5], [0, 1, 2, 3], [39]], layers: [0, 2] },
  },
};

for (const [name, plan] of Object.entries(plans)) {
  test(`structural prune (${name}) equals the masked dense model and is smaller`, () => {
    const pruned = pruneModel(model, plan);
    const a = embeds(pruned),
      b = embeds(model, plan);
    assert.ok(maxAbsDiff(a.img, b.img) <= 1e-5, `image embeds differ by ${maxAbsDiff(a.img, b.img)}`);
    assert.ok(maxAbsDiff(a.txt, b.txt) <= 1e-5, `text embeds differ by ${maxAbsDiff(a.txt, b.txt)}`);
    assert.ok(countParameters(pruned) < countParameters(model));
    for (const tw of ['vision', 'text'] as const) {
      const k = plan[tw]!;
      assert.deepEqual(
        pruned.config[tw].heads,
        k.layers.map((l) => k.heads[l].length),
      );
      assert.deepEqual(
        pruned.config[tw].ffn,
        k.layers.map((l) => k.ffn[l].length),
      );
      assert.deepEqual(pruned.config[tw].layerMap, k.layers);
    }
  });
}

test('a pruned checkpoint saves, reloads with per-layer widths and gives the same embeddings', (t) => {
  const dir = makeTempDir();
  t.after(() => removeDir(dir));
  const pruned = pruneModel(model, plans.all);
  saveCheckpoint(pruned, dir);
  const back = loadCheckpoint(dir);
  for (const tw of ['vision', 'text'] as const) {
    assert.deepEqual(back.config[tw].heads, pruned.config[tw].heads);
    assert.deepEqual(back.config[tw].ffn, pruned.config[tw].ffn);
    assert.deepEqual(back.config[tw].layerMap, pruned.config[tw].layerMap);
  }
  assert.equal(countParameters(back), countParameters(pruned));
  const a = embeds(back),
    b = embeds(model, plans.all);
  assert.ok(maxAbsDiff(a.img, b.img) <= 1e-5 && maxAbsDiff(a.txt, b.txt) <= 1e-5);
  // Pruning a pruned model keeps the original layer indices in layerMap.
  const again = pruneModel(back, { vision: { ...keepAll(back.config.vision), layers: [1] } });
  assert.deepEqual(again.config.vision.layerMap, [2]);
});

test("MoPE equals the Z drop of the model with the module's weights deleted (independent reference)", () => {
  const cal = calibration('retrieval');
  const r = cal.retrieval!;
  const E = model.config.projectionDim,
    s = model.weights.logitScale[0];
  const mods: ModuleRef[] = [
    { tower: 'vision', kind: 'head', layer: 1, index: 2 },
    { tower: 'text', kind: 'head', layer: 0, index: 1 },
    { tower: 'vision', kind: 'ffn', layer: 2, index: 1 },
    { tower: 'text', kind: 'layer', layer: 1, index: 0 },
  ];
  const res = scoreMope(rt, model, cal, mods, { ffnGroupSize: 16 });
  const zOf = (m: ClipModel) =>
    retrievalObjective(rt, encodeImages(rt, m, r.pixels, r.n), encodeTexts(rt, m, r.captions), r.n, E, s);
  const base = zOf(model);
  assert.ok(Math.abs(base.z - res.base.z) < 1e-12 && Math.abs(base.loss - res.base.loss) < 1e-6);
  for (const m of mods) {
    const cfg = model.config[m.tower];
    const keep: TowerKeep = keepAll(cfg);
    if (m.kind === 'head') keep.heads[m.layer] = keep.heads[m.layer].filter((h) => h !== m.index);
    if (m.kind === 'ffn') {
      const [a, e] = ffnGroupRange(cfg.ffn[m.layer], 16, m.index);
      keep.ffn[m.layer] = keep.ffn[m.layer].filter((n) => n < a || n >= e);
    }
    if (m.kind === 'layer') keep.layers = keep.layers.filter((l) => l !== m.layer);
    const v = zOf(pruneModel(model, { [m.tower]: keep }));
    const got = res.modules.find((x) => moduleKey(x) === moduleKey(m))!;
    assert.ok(Math.abs(got.mope - (base.z - v.z)) <= 1e-6, `${moduleKey(m)} mope ${got.mope} vs ${base.z - v.z}`);
    assert.ok(
      Math.abs(got.loss_increase - (v.loss - base.loss)) <= 1e-5,
      `${moduleKey(m)} loss ${got.loss_increase} vs ${v.loss - base.loss}`,
    );
  }
});

test('magnitude equals the L1 norm computed from the HF state dict', () => {
  const sd = toStateDict(model);
  const l1 = (a: Float32Array) => a.reduce((s, x) => s + Math.abs(x), 0);
  const get = (n: string) => sd.get(n)!;
  for (const [tw, prefix] of [
    ['vision', 'vision_model'],
    ['text', 'text_model'],
  ] as const) {
    const cfg = model.config[tw];
    const C = cfg.hidden,
      HS = cfg.headDim;
    const p = (l: number) => `${prefix}.encoder.layers.${l}.`;
    // head 1 of layer 2
    let ref = 0;
    for (const x of ['q', 'k', 'v'])
      ref += l1(get(`${p(2)}self_attn.${x}_proj.weight`).data.slice(1 * HS * C, 2 * HS * C));
    const out = get(`${p(2)}self_attn.out_proj.weight`);
    const A = out.shape[1];
    for (let c = 0; c < C; c++) for (let j = HS; j < 2 * HS; j++) ref += Math.abs(out.data[c * A + j]);
    assert.ok(Math.abs(magnitude(model, { tower: tw, kind: 'head', layer: 2, index: 1 }, 8) - ref) <= 1e-6 * ref);
    // last (smaller) FFN group of layer 0 with groups of 16
    const F = cfg.ffn[0],
      g = Math.ceil(F / 16) - 1,
      a = g * 16;
    ref = l1(get(`${p(0)}mlp.fc1.weight`).data.slice(a * C, F * C));
    const fc2 = get(`${p(0)}mlp.fc2.weight`).data;
    for (let c = 0; c < C; c++) for (let n = a; n < F; n++) ref += Math.abs(fc2[c * F + n]);
    assert.ok(Math.abs(magnitude(model, { tower: tw, kind: 'ffn', layer: 0, index: g }, 16) - ref) <= 1e-6 * ref);
    // whole layer 1: every tensor of the block
    ref = 0;
    for (const [n, t] of sd) if (n.startsWith(p(1))) ref += l1(t.data);
    assert.ok(Math.abs(magnitude(model, { tower: tw, kind: 'layer', layer: 1, index: 0 }, 8) - ref) <= 1e-6 * ref);
  }
});

/** A scores file for the tiny model with chosen mope values (higher = more important). */
function fakeScores(value: (m: ModuleRef) => number, tieBreak: (m: ModuleRef) => number = () => 0): ScoresFile {
  const dir = makeTempDir();
  try {
    const f = runScore(rt, model, null, {
      out: join(dir, 's.json'),
      modelPath: 'tiny',
      data: null,
      zeroshotData: null,
      limit: null,
      task: null,
      metric: 'random',
      seed: 0,
      towers: ['vision', 'text'],
      kinds: ['head', 'ffn', 'layer'],
      ffnGroupSize: 8,
      shard: null,
      resume: false,
    });
    f.metric = 'mope';
    for (const m of f.modules) {
      m.mope = value(m);
      m.loss_increase = tieBreak(m);
    }
    return f;
  } finally {
    removeDir(dir);
  }
}

test('plan: per-layer fractions, global ranking, min-heads, loss tie-break, depth', () => {
  // vision heads: importance = index in layer 0, reversed in layer 1, all tied in layer 2 with the tie broken by loss.
  const sc = fakeScores(
    (m) =>
      m.kind === 'head'
        ? m.layer === 0
          ? m.index
          : m.layer === 1
            ? -m.index
            : 0
        : m.kind === 'layer'
          ? [5, 1, 3][m.layer]
          : m.layer * 10 + m.index,
    (m) => (m.kind === 'head' && m.layer === 2 ? (m.index === 1 ? 1 : 0) : 0),
  );
  const per = makePlan(model, sc, { towers: ['vision'], keepHeads: 0.34, scope: 'per-layer', minHeads: 1 }).vision!;
  assert.deepEqual(per.heads, [[2], [0], [1]]);
  const per2 = makePlan(model, sc, { towers: ['vision'], keepHeads: 0.67, scope: 'per-layer', minHeads: 1 }).vision!;
  assert.deepEqual(
    per2.heads.map((h) => h.length),
    [2, 2, 2],
  );
  // global: 4 of 9 heads; every layer keeps ≥ min-heads.
  const glob = makePlan(model, sc, { towers: ['vision'], keepHeads: 0.45, scope: 'global', minHeads: 1 }).vision!;
  assert.equal(glob.heads.flat().length, 4);
  assert.ok(glob.heads.every((h) => h.length >= 1));
  const glob2 = makePlan(model, sc, { towers: ['vision'], keepHeads: 0.12, scope: 'global', minHeads: 2 }).vision!;
  assert.deepEqual(
    glob2.heads.map((h) => h.length),
    [2, 2, 2],
  );
  // FFN: groups of 8 over F 36 → 5 groups; keep 0.4 → 2 groups per layer, the highest index ones here.
  const ffn = makePlan(model, sc, { towers: ['vision'], keepFfn: 0.4, scope: 'per-layer', minHeads: 1 }).vision!;
  assert.deepEqual(ffn.ffn[0], [24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]);
  // depth: keep the 2 best layers (scores 5, 1, 3) in order.
  assert.deepEqual(
    makePlan(model, sc, { towers: ['vision'], keepLayers: 2, scope: 'per-layer', minHeads: 1 }).vision!.layers,
    [0, 2],
  );
  // text untouched when only vision is planned.
  assert.equal(
    makePlan(model, sc, { towers: ['vision'], keepHeads: 0.5, scope: 'per-layer', minHeads: 1 }).text,
    undefined,
  );
  // errors
  for (const keepHeads of [0, 1.5, -0.1, NaN]) {
    assert.throws(
      () => makePlan(model, sc, { towers: ['vision'], keepHeads, scope: 'per-layer', minHeads: 1 }),
      ConfigError,
    );
  }
  assert.throws(
    () => makePlan(model, sc, { towers: ['vision'], keepHeads: 0.5, scope: 'per-layer', minHeads: 0 }),
    /zero heads/,
  );
  assert.throws(
    () => makePlan(model, sc, { towers: ['vision'], keepLayers: 4, scope: 'per-layer', minHeads: 1 }),
    ConfigError,
  );
  assert.throws(() => makePlan(model, sc, { towers: ['vision'], scope: 'per-layer', minHeads: 1 }), ConfigError);
  const noHeads = structuredClone(sc);
  noHeads.modules = noHeads.modules.filter((m) => !(m.kind === 'head' && m.tower === 'text'));
  assert.throws(
    () => makePlan(model, noHeads, { towers: ['text'], keepHeads: 0.5, scope: 'per-layer', minHeads: 1 }),
    /lacks/,
  );
});

test('scores from another model or geometry are refused', () => {
  const sc = fakeScores(() => 0);
  checkScoresMatchModel(sc, model, 's.json', 'tiny');
  assert.throws(() => checkScoresMatchModel(sc, pruneModel(model, plans.heads), 's.json', 'pruned'), /geometry/);
  assert.throws(() => checkScoresMatchModel(sc, tinyModel(99), 's.json', 'other'), /other weights/);
  assert.equal(enumerateModules(model, { towers: ['vision'], kinds: ['ffn'], ffnGroupSize: 8 }).length, 15);
});
