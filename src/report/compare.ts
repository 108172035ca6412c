// The criteria comparison of the scores report: rank agreement (Spearman ρ, shared bottom half), side-by-side
// head rank maps and the cumulative reference score of the modules each criterion would prune first.
// Criteria: each file's metric plus what its modules also carry (loss_increase, magnitude), for one model.
import { basename } from 'node:path';
import { moduleKey, type ModuleKind, type TowerName } from '../prune/modules.ts';
import type { ScoreEntry, ScoresFile } from '../prune/scores-file.ts';
import { KINDS, KIND_LABEL, TOWERS, primaryValue, type FigureSink, type ReportInput } from './figures.ts';
import { PALETTE, escapeXml, fmt, heatmap, lineChart, type HeatCell } from './svg.ts';

export interface Criterion {
  name: string;
  /** Module key → score (higher = more important). */
  values: Map<string, number>;
  /** Tie-breaker per module (MoPE: loss increase). */
  tie?: Map<string, number>;
  modules: Map<string, ScoreEntry>;
}

function collect(file: ScoresFile, pick: (e: ScoreEntry) => number | null | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of file.modules) {
    const v = pick(e);
    if (typeof v === 'number' && Number.isFinite(v)) m.set(moduleKey(e), v);
  }
  return m;
}

function sameValues(a: Map<string, number>, b: Map<string, number>): boolean {
  for (const [k, v] of b) if (a.has(k) && a.get(k) !== v) return false;
  return true;
}

/** The criteria of files scored on one model (the first file's); files of other models are returned as excluded. */
export function gatherCriteria(inputs: ReportInput[]): { criteria: Criterion[]; excluded: string[] } {
  const fp = inputs[0]?.file.model.fingerprint;
  const criteria: Criterion[] = [];
  const excluded: string[] = [];
  const add = (
    name: string,
    file: ScoresFile,
    from: string,
    values: Map<string, number>,
    tie?: Map<string, number>,
  ) => {
    if (values.size === 0) return;
    const same = criteria.filter((c) => c.name === name || c.name.startsWith(`${name} (`));
    if (same.some((c) => sameValues(c.values, values))) return;
    const modules = new Map(file.modules.map((e) => [moduleKey(e), e]));
    criteria.push({ name: same.length ? `${name} (${basename(from)})` : name, values, tie, modules });
  };
  for (const { name, file } of inputs) {
    if (file.model.fingerprint !== fp) {
      excluded.push(name);
      continue;
    }
    const loss = collect(file, (e) => e.loss_increase);
    add(
      file.metric,
      file,
      name,
      collect(file, (e) => primaryValue(file, e)),
      file.metric === 'mope' ? loss : undefined,
    );
    if (file.metric === 'mope') add('loss_increase', file, name, loss);
  }
  for (const { name, file } of inputs)
    if (file.model.fingerprint === fp)
      add(
        'magnitude',
        file,
        name,
        collect(file, (e) => e.magnitude),
      );
  return { criteria, excluded };
}

/** Ranks 1…n (1 = smallest), ties get their average rank. */
export function averageRanks(v: number[]): number[] {
  const idx = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Array<number>(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Spearman ρ (Pearson on average ranks); NaN when either side is constant or n < 2. */
export function spearman(a: number[], b: number[]): number {
  const n = a.length;
  if (n < 2) return NaN;
  const ra = averageRanks(a),
    rb = averageRanks(b);
  const ma = ra.reduce((s, x) => s + x, 0) / n,
    mb = rb.reduce((s, x) => s + x, 0) / n;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) ** 2;
    sbb += (rb[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

/** Keys sorted least important first (ties: tie-breaker, then canonical key order for a stable result). */
function pruneOrder(c: Criterion, keys: string[]): string[] {
  return [...keys].sort(
    (x, y) =>
      c.values.get(x)! - c.values.get(y)! ||
      (c.tie?.get(x) ?? 0) - (c.tie?.get(y) ?? 0) ||
      (x < y ? -1 : x > y ? 1 : 0),
  );
}

/** Share of the ⌊n/2⌋ least important modules by a that are also among the ⌊n/2⌋ least important by b. */
export function bottomHalfOverlap(a: Criterion, b: Criterion, keys: string[]): number {
  const h = Math.floor(keys.length / 2);
  if (h === 0) return NaN;
  const sb = new Set(pruneOrder(b, keys).slice(0, h));
  return (
    pruneOrder(a, keys)
      .slice(0, h)
      .filter((k) => sb.has(k)).length / h
  );
}

function commonKeys(criteria: Criterion[], tower: TowerName, kind: ModuleKind): string[] {
  const first = criteria[0];
  return [...first.values.keys()].filter((k) => {
    const e = first.modules.get(k)!;
    return e.tower === tower && e.kind === kind && criteria.every((c) => c.values.has(k));
  });
}

function agreementMatrix(
  sink: FigureSink,
  criteria: Criterion[],
  tower: TowerName,
  kind: ModuleKind,
  keys: string[],
): string {
  const cells: HeatCell[] = [];
  criteria.forEach((a, i) =>
    criteria.forEach((b, j) => {
      const rho = spearman(
        keys.map((k) => a.values.get(k)!),
        keys.map((k) => b.values.get(k)!),
      );
      const v = Number.isFinite(rho) ? rho : null;
      cells.push({
        row: i,
        col: j,
        value: v,
        title: `${tower} ${KIND_LABEL[kind]}: Spearman ρ(${a.name}, ${b.name}) = ${fmt(v)} over ${keys.length} modules`,
        data: { a: a.name, b: b.name, rho: String(v) },
      });
    }),
  );
  const title = `${tower} ${KIND_LABEL[kind]}: rank agreement (Spearman ρ)`;
  const names = criteria.map((c) => c.name);
  return sink.add(`compare-${tower}-${kind}-agreement`, title, (id) =>
    heatmap({
      id,
      title,
      rows: names,
      cols: names,
      rowAxis: '',
      colAxis: `${keys.length} modules`,
      cells,
      cell: 56,
      scale: { kind: 'diverging', min: -1, max: 1, label: 'ρ' },
      format: (v) => v.toFixed(2),
    }),
  );
}

/** Σ reference score of the k modules each criterion prunes first, k = 0…n (an additive proxy of the damage). */
function cumulativeCurve(
  sink: FigureSink,
  criteria: Criterion[],
  tower: TowerName,
  kind: ModuleKind,
  keys: string[],
): string {
  const ref = criteria[0];
  const series = criteria.map((c, i) => {
    let s = 0;
    const pts: Array<[number, number]> = [[0, 0]];
    pruneOrder(c, keys).forEach((k, r) => {
      s += ref.values.get(k)!;
      pts.push([r + 1, s]);
    });
    return {
      name: c.name,
      color: PALETTE[i % PALETTE.length],
      points: pts,
      dashed: i > 0 && c.name.startsWith('random'),
    };
  });
  const title = `${tower} ${KIND_LABEL[kind]}: Σ ${ref.name} of the k modules pruned first`;
  return sink.add(`compare-${tower}-${kind}-cumulative`, title, (id) =>
    lineChart({
      id,
      title,
      series,
      xAxis: `k (${KIND_LABEL[kind]} removed, least important first by each criterion)`,
      yAxis: `Σ ${ref.name}`,
      width: 560,
    }),
  );
}

/** Per criterion a layer × head map of rank percentiles (1 = most important), so different scales compare. */
function headRankMaps(sink: FigureSink, criteria: Criterion[], tower: TowerName, keys: string[]): string {
  const first = criteria[0];
  const L = Math.max(...keys.map((k) => first.modules.get(k)!.layer)) + 1;
  const H = Math.max(...keys.map((k) => first.modules.get(k)!.index)) + 1;
  return criteria
    .map((c) => {
      const order = pruneOrder(c, keys);
      const pct = new Map(order.map((k, r) => [k, order.length > 1 ? r / (order.length - 1) : 1]));
      const cells: HeatCell[] = keys.map((k) => {
        const e = first.modules.get(k)!;
        return {
          row: e.layer,
          col: e.index,
          value: pct.get(k)!,
          title: `${tower} layer ${e.layer} head ${e.index}: ${c.name} ${fmt(c.values.get(k)!)}, rank percentile ${fmt(pct.get(k)!)}`,
          data: { criterion: c.name, layer: e.layer, head: e.index, value: String(c.values.get(k)) },
        };
      });
      const title = `${tower} heads ranked by ${c.name}`;
      return sink.add(`compare-${tower}-heads-${c.name}`, title, (id) =>
        heatmap({
          id,
          title,
          rows: Array.from({ length: L }, (_, l) => String(l)),
          cols: Array.from({ length: H }, (_, h) => String(h)),
          rowAxis: 'layer',
          colAxis: 'head',
          cells,
          cell: Math.max(14, Math.min(30, Math.floor(260 / Math.max(L, H)))),
          showValues: false,
          scale: { kind: 'sequential', min: 0, max: 1, label: 'rank pct' },
        }),
      );
    })
    .join('');
}

/** The comparison section (empty when fewer than two criteria exist). */
export function comparisonSection(sink: FigureSink, inputs: ReportInput[]): string {
  const { criteria, excluded } = gatherCriteria(inputs);
  if (criteria.length < 2) return '';
  let out =
    `<h2 id="comparison">Criteria compared</h2><p class="note">Criteria: ${criteria.map((c) => `<b>${escapeXml(c.name)}</b>`).join(', ')}. ` +
    `ρ = Spearman rank correlation over the modules every criterion scored; "bottom half" = share of the ⌊n/2⌋ modules a criterion ` +
    `would prune first that the other would prune too. The curves add up ${escapeXml(criteria[0].name)} over the modules each ` +
    `criterion prunes first: lower means a cheaper cut by that first-order, additive proxy.</p>`;
  if (excluded.length)
    out += `<p class="note warn">Not compared (scored on another model): ${excluded.map(escapeXml).join(', ')}.</p>`;
  const pairs: Array<[Criterion, Criterion]> = [];
  criteria.forEach((a, i) => criteria.slice(i + 1).forEach((b) => pairs.push([a, b])));
  const cols: Array<{ tower: TowerName; kind: ModuleKind; keys: string[] }> = [];
  for (const tower of TOWERS)
    for (const kind of KINDS) {
      const keys = commonKeys(criteria, tower, kind);
      if (keys.length >= 2) cols.push({ tower, kind, keys });
    }
  if (cols.length === 0) return out + '<p class="note">No module was scored by every criterion.</p>';
  out += `<table class="agreement"><thead><tr><th>criteria</th>${cols.map((c) => `<th>${c.tower} ${KIND_LABEL[c.kind]} (${c.keys.length})<br/>ρ / bottom half</th>`).join('')}</tr></thead><tbody>`;
  for (const [a, b] of pairs) {
    out += `<tr><td>${escapeXml(a.name)} vs ${escapeXml(b.name)}</td>`;
    for (const c of cols) {
      const rho = spearman(
        c.keys.map((k) => a.values.get(k)!),
        c.keys.map((k) => b.values.get(k)!),
      );
      out += `<td data-rho="${escapeXml(String(rho))}">${escapeXml(fmt(rho))} / ${escapeXml(fmt(bottomHalfOverlap(a, b, c.keys)))}</td>`;
    }
    out += '</tr>';
  }
  out += '</tbody></table>';
  for (const tower of TOWERS) {
    const tc = cols.filter((c) => c.tower === tower);
    if (tc.length === 0) continue;
    out += `<h3>${tower} tower</h3><div class="figs">`;
    for (const c of tc)
      out +=
        agreementMatrix(sink, criteria, tower, c.kind, c.keys) + cumulativeCurve(sink, criteria, tower, c.kind, c.keys);
    out += '</div>';
    const heads = tc.find((c) => c.kind === 'head');
    if (heads) out += `<div class="figs">${headRankMaps(sink, criteria, tower, heads.keys)}</div>`;
  }
  return out;
}
