// The table `npm run bench` prints: per figure, ours and PyTorch's in fp32 and in bf16, and every ratio
// (ours/PyTorch at the same precision, ours bf16 / PyTorch fp32, ours bf16 / ours fp32). Missing figures read n/a.

export interface Pair {
  ours: number;
  /** PyTorch's figure; undefined when its twin could not run. */
  torch?: number;
}

export interface BenchRow {
  name: string;
  unit: string;
  fp32?: Pair;
  bf16?: Pair;
}

const num = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !(b > 0) ? 'n/a' : `${(a / b).toFixed(2)}×`;

const HEAD = [
  '',
  'ours fp32',
  'torch fp32',
  'fp32 ratio',
  'ours bf16',
  'torch bf16',
  'bf16 ratio',
  'ours bf16/torch fp32',
  'ours bf16/fp32',
];

/** Markdown table (readable as plain text too); higher is faster in every figure. */
export function formatBenchTable(rows: BenchRow[]): string {
  const body = rows.map((r) => [
    `${r.name} (${r.unit})`,
    num(r.fp32?.ours),
    num(r.fp32?.torch),
    ratio(r.fp32?.ours, r.fp32?.torch),
    num(r.bf16?.ours),
    num(r.bf16?.torch),
    ratio(r.bf16?.ours, r.bf16?.torch),
    ratio(r.bf16?.ours, r.fp32?.torch),
    ratio(r.bf16?.ours, r.fp32?.ours),
  ]);
  const all = [HEAD, ...body];
  const w = HEAD.map((_, j) => Math.max(...all.map((row) => row[j]!.length)));
  const cell = (c: string, j: number): string => (j === 0 ? c.padEnd(w[j]!) : c.padStart(w[j]!));
  const line = (row: string[]): string => `| ${row.map(cell).join(' | ')} |`;
  return [
    line(HEAD),
    `|${w.map((n, j) => (j === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':')).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}
