// The --teacher-cache DIR and --teacher-cache-memory MiB flags of `distill` and `compress`: teacher outputs are kept
// per training item in memory by default (bounded), with DIR also on disk, reused across epochs, stages and runs.
import type { Command } from 'commander';
import { defaultTeacherCacheBytes, type TeacherCacheOptions } from '../train/teacher-cache.ts';
import { parseNonNegativeInt } from './common.ts';

export function addTeacherCacheFlags(cmd: Command): Command {
  return cmd
    .option(
      '--teacher-cache <dir>',
      'also keep the per-item teacher outputs in this folder (reused by later runs and stages)',
    )
    .option(
      '--teacher-cache-memory <MiB>',
      'in-memory bound of the teacher-output cache (0 = no in-memory copy; ' +
        'default: an eighth of the machine memory, at most 4096; with --teacher-cache DIR a thirty-second, ' +
        'at most 512, as the system page cache keeps recent entry files in memory)',
    );
}

/** The cache settings the flags ask for; null = no cache (memory 0 and no folder). */
export function parseTeacherCacheFlags(o: Record<string, unknown>): TeacherCacheOptions | null {
  const mib =
    o.teacherCacheMemory === undefined
      ? null
      : parseNonNegativeInt(String(o.teacherCacheMemory), '--teacher-cache-memory');
  const dir = o.teacherCache === undefined ? null : String(o.teacherCache);
  const memoryBytes = mib === null ? defaultTeacherCacheBytes(dir !== null) : mib * 2 ** 20;
  if (memoryBytes === 0 && dir === null) return null;
  return { dir, memoryBytes };
}
