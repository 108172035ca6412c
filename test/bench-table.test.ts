// The table `npm run bench` prints: every ratio from the figures, n/a where PyTorch's twin did not run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBenchTable } from '../src/bench/table.ts';

test('bench table: ours/PyTorch per precision, bf16 against PyTorch fp32 and our fp32, n/a for missing figures', () => {
  const t = formatBenchTable([
    { name: 'images/s', unit: 'img/s', fp32: { ours: 20, torch: 10 }, bf16: { ours: 60, torch: 40 } },
    { name: 'texts/s', unit: 'txt/s', fp32: { ours: 5 }, bf16: { ours: 15, torch: undefined } },
  ]).split('\n');
  assert.equal(t.length, 4);
  const cells = (l: string) =>
    l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  assert.deepEqual(cells(t[2]!), [
    'images/s (img/s)',
    '20.00',
    '10.00',
    '2.00×',
    '60.00',
    '40.00',
    '1.50×',
    '6.00×',
    '3.00×',
  ]);
  assert.deepEqual(cells(t[3]!), ['texts/s (txt/s)', '5.00', 'n/a', 'n/a', '15.00', 'n/a', 'n/a', 'n/a', '3.00×']);
});
