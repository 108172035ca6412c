// Per-tower settings of a compress run (`--keep-heads vision=0.5,text=0.75`, or a bare `0.5` meaning every tower):
// parsing and lookup. Used for the kept fractions of heads and FFN groups and for the kept layer counts.
import { ConfigError } from '../errors.ts';
import type { TowerName } from './modules.ts';

/** One value for every tower, or a value per named tower (towers not named keep the default). */
export type TowerValues = number | Partial<Record<TowerName, number>>;

/** The value of `tower` (undefined when per-tower values do not name it). */
export function towerValue(v: TowerValues | undefined, tower: TowerName): number | undefined {
  if (v === undefined || typeof v === 'number') return v;
  return v[tower];
}

/**
 * Parses "0.5" or "vision=0.5,text=0.75". `check` validates one number (throws with the flag's name); a tower named
 * twice or an unknown tower is refused.
 */
export function parseTowerValues(
  s: string,
  flag: string,
  check: (n: number) => boolean,
  expected: string,
): TowerValues {
  const num = (t: string): number => {
    const n = Number(t.trim());
    if (t.trim() === '' || !check(n)) {
      throw new ConfigError(`${flag} expects ${expected}, found "${t.trim()}" in "${s}"`);
    }
    return n;
  };
  if (!s.includes('=')) return num(s);
  const out: Partial<Record<TowerName, number>> = {};
  for (const part of s.split(',')) {
    const [k, v, ...rest] = part.split('=');
    const tower = (k ?? '').trim();
    if (rest.length > 0 || v === undefined || (tower !== 'vision' && tower !== 'text')) {
      throw new ConfigError(`${flag} expects a number or vision=X,text=Y, found "${part}" in "${s}"`);
    }
    if (out[tower] !== undefined) throw new ConfigError(`${flag} names the ${tower} tower twice in "${s}"`);
    out[tower] = num(v);
  }
  return out;
}

export const isFraction = (n: number): boolean => Number.isFinite(n) && n > 0 && n <= 1;
export const isPositiveInt = (n: number): boolean => Number.isInteger(n) && n >= 1;

/** "0.5" or "vision=0.5,text=0.75" for the report and logs. */
export function fmtTowerValues(v: TowerValues | undefined): string {
  if (v === undefined) return '–';
  if (typeof v === 'number') return String(v);
  return Object.entries(v)
    .map(([k, x]) => `${k}=${x}`)
    .join(',');
}
