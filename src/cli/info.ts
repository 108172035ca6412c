// `mope-clip info`: per-tower layers, heads and FFN width per layer, parameters, GFLOPs per image and per text.
import type { Command } from 'commander';
import { loadCheckpoint, countParameters } from '../io/checkpoint.ts';
import { gflops, imageMacs, textMacs } from '../model/flops.ts';
import type { ClipModel, TowerConfig } from '../model/types.ts';
import { toStateDict } from '../model/state-dict.ts';
import { processIO, type CliIO } from './io.ts';

export interface ModelInfo {
  params: number;
  gflops_per_image: number;
  gflops_per_text: number;
  text_tokens: number;
  projection_dim: number;
  text: TowerInfo;
  vision: TowerInfo & { image_size: number; patch_size: number };
}
interface TowerInfo {
  layers: number;
  hidden: number;
  head_dim: number;
  heads: number[];
  ffn: number[];
  layer_map: number[];
  act: string;
  params: number;
}

function towerParams(model: ClipModel, prefix: string): number {
  let n = 0;
  for (const [name, t] of toStateDict(model)) if (name.startsWith(prefix)) n += t.data.length;
  return n;
}

function tower(t: TowerConfig, params: number): TowerInfo {
  return {
    layers: t.heads.length,
    hidden: t.hidden,
    head_dim: t.headDim,
    heads: [...t.heads],
    ffn: [...t.ffn],
    layer_map: [...t.layerMap],
    act: t.act,
    params,
  };
}

export function modelInfo(model: ClipModel): ModelInfo {
  const c = model.config;
  return {
    params: countParameters(model),
    gflops_per_image: gflops(imageMacs(c)),
    gflops_per_text: gflops(textMacs(c, c.text.maxPositions)),
    text_tokens: c.text.maxPositions,
    projection_dim: c.projectionDim,
    text: tower(c.text, towerParams(model, 'text_model.') + c.projectionDim * c.text.hidden),
    vision: {
      ...tower(c.vision, towerParams(model, 'vision_model.') + c.projectionDim * c.vision.hidden),
      image_size: c.vision.imageSize,
      patch_size: c.vision.patchSize,
    },
  };
}

function fmtWidths(xs: number[]): string {
  return xs.every((x) => x === xs[0]) ? `${xs[0]} in every layer` : xs.join(' ');
}

export function register(program: Command, io: CliIO = processIO): void {
  program
    .command('info')
    .description(
      'Describe a checkpoint: layers, heads and FFN width per layer, parameters, GFLOPs per image and per text.',
    )
    .requiredOption('--model <dir>', 'checkpoint folder')
    .option('--json', 'print JSON instead of text')
    .action((o) => {
      const info = modelInfo(loadCheckpoint(o.model));
      if (o.json) {
        io.out.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const lines = [
        `model ${o.model}: ${(info.params / 1e6).toFixed(2)} M parameters, projection ${info.projection_dim}`,
      ];
      for (const [name, t] of [
        ['vision', info.vision],
        ['text', info.text],
      ] as const) {
        lines.push(
          `${name}: ${t.layers} layers, width ${t.hidden}, head size ${t.head_dim}, ${t.act}, ${(t.params / 1e6).toFixed(2)} M parameters`,
        );
        lines.push(`  heads per layer: ${fmtWidths(t.heads)}`);
        lines.push(`  FFN width per layer: ${fmtWidths(t.ffn)}`);
        if (t.layer_map.some((m, i) => m !== i)) lines.push(`  original layer indices: ${t.layer_map.join(' ')}`);
      }
      lines.push(
        `image ${info.vision.image_size}px / patch ${info.vision.patch_size}: ${info.gflops_per_image.toFixed(3)} GFLOPs per image`,
      );
      lines.push(`text ${info.text_tokens} tokens: ${info.gflops_per_text.toFixed(3)} GFLOPs per text`);
      io.out.write(lines.join('\n') + '\n');
    });
}
