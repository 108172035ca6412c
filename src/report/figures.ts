// Shared pieces of the scores report: the inputs, the figure collector (unique file-name-safe figure names)
// and the per-module value of a scores file by its metric. Dims: see src/prune/modules.ts.
import type { ModuleKind, TowerName } from '../prune/modules.ts';
import type { ScoreEntry, ScoresFile } from '../prune/scores-file.ts';

export interface ReportInput {
  /** Display name (the path the user gave). */
  name: string;
  file: ScoresFile;
}

export interface Figure {
  /** File-name-safe, unique within the report (no extension). */
  name: string;
  title: string;
  svg: string;
}

export const TOWERS: TowerName[] = ['vision', 'text'];
export const KINDS: ModuleKind[] = ['head', 'ffn', 'layer'];
export const KIND_LABEL: Record<ModuleKind, string> = { head: 'heads', ffn: 'FFN groups', layer: 'layers' };
export const METRIC_LABEL: Record<ScoresFile['metric'], string> = {
  mope: 'MoPE (ΔZ)',
  magnitude: 'magnitude (L1)',
  random: 'random',
  taylor: 'Taylor (Σ|w·g|)',
};

/** The file's own score of a module: mope, magnitude or random, by the file's metric. */
export function primaryValue(file: ScoresFile, e: ScoreEntry): number | null {
  const v =
    file.metric === 'mope'
      ? e.mope
      : file.metric === 'magnitude'
        ? e.magnitude
        : file.metric === 'taylor'
          ? e.taylor
          : e.random;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._]+/, '') || 'figure';
}

/** Collects figures and hands out unique, file-name-safe names. */
export class FigureSink {
  readonly figures: Figure[] = [];
  private used = new Set<string>();

  /** Makes the figure (make gets its element id) and returns it wrapped for the HTML. */
  add(base: string, title: string, make: (id: string) => string): string {
    let name = safe(base);
    for (let i = 2; this.used.has(name); i++) name = `${safe(base)}-${i}`;
    this.used.add(name);
    const svg = make(`fig-${name}`);
    this.figures.push({ name, title, svg });
    return `<figure class="fig">${svg}</figure>`;
  }
}
