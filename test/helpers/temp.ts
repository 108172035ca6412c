// Temporary folders for tests: one per test or file, removed by the test (t.after / after) with removeDir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp folder; remove it with removeDir (tests call it from t.after). */
export function makeTempDir(prefix = 'mope-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
