// Writes the two checkpoints behind docs/deploy.md's latency table: a dense ViT-B/32-geometry CLIP with random
// weights and a half-width "pruned" one (vision 6 heads / FFN 1536 per layer, text 4 heads / FFN 1024; head size 64).
// Usage: node --import tsx bench/deploy-models.ts OUT_DIR   → OUT_DIR/dense, OUT_DIR/pruned
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { saveCheckpoint } from '../io/checkpoint.ts';
import { GEOMETRIES, initClipModel, type ClipGeometry } from '../model/init.ts';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node --import tsx bench/deploy-models.ts OUT_DIR\n');
  process.exit(2);
}
const dense = GEOMETRIES['vit-b-32'];
const L = 12;
const pruned: ClipGeometry = {
  text: { ...dense.text, heads: new Array(L).fill(4), ffn: new Array(L).fill(1024), headDim: 64 },
  vision: { ...dense.vision, heads: new Array(L).fill(6), ffn: new Array(L).fill(1536), headDim: 64 },
  projectionDim: dense.projectionDim,
};
for (const [name, g] of [
  ['dense', dense],
  ['pruned', pruned],
] as const) {
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  saveCheckpoint(initClipModel(g, 0), dir);
  process.stderr.write(`wrote ${dir}\n`);
}
