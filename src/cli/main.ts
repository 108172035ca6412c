// mope-clip CLI: one file per command under src/cli/; this file wires them and maps errors to exit codes.
import { Command, CommanderError } from 'commander';
import { exitCodeOf, isUserError } from '../errors.ts';
import { processIO, type CliIO } from './io.ts';

type Register = (program: Command, io: CliIO) => void;

const COMMANDS: Array<() => Promise<{ register: Register }>> = [
  () => import('./embed.ts'),
  () => import('./tokenize.ts'),
  () => import('./info.ts'),
  () => import('./init.ts'),
  () => import('./bench.ts'),
  () => import('./eval.ts'),
  () => import('./data.ts'),
  () => import('./score.ts'),
  () => import('./prune.ts'),
  () => import('./export.ts'),
  () => import('./serve.ts'),
  () => import('./report.ts'),
  () => import('./train.ts'),
  () => import('./distill.ts'),
  () => import('./compress.ts'),
  () => import('./demo.ts'),
  () => import('./study.ts'),
];

export async function buildProgram(io: CliIO = processIO): Promise<Command> {
  const program = new Command('mope-clip')
    .description('Compress CLIP models with MoPE-CLIP: score modules, prune structurally, distil, evaluate, export.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false);
  for (const load of COMMANDS) {
    const mod = await load();
    mod.register(program, io);
  }
  return program;
}

/**
 * A failure of the environment rather than of mope-clip: a file-system error (permissions, full disk, a path that
 * vanished) or an allocation the machine cannot satisfy. Returns the message to print, or null for a bug.
 */
function environmentError(e: unknown): string | null {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code) && typeof err.syscall === 'string') {
    return `cannot ${err.syscall}${err.path ? ` ${err.path}` : ''}: ${err.message.replace(/^E[A-Z]+: /, '')}.`;
  }
  if (
    e instanceof RangeError &&
    /Array buffer allocation failed|Invalid typed array length|Invalid array length/.test(e.message)
  ) {
    return `not enough memory for this run (${e.message}); use a smaller --batch, --limit or model.`;
  }
  return null;
}

/** Runs the CLI; returns the process exit code (0 ok, 1 user error, 2 usage error, 3 internal error). */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  try {
    const program = await buildProgram(io);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isUserError(e)) {
      io.err.write(`mope-clip: ${e.message}\n`);
      return exitCodeOf(e);
    }
    const env = environmentError(e);
    if (env) {
      io.err.write(`mope-clip: ${env}\n`);
      return 1;
    }
    const err = e as Error;
    io.err.write(
      `mope-clip: internal error: ${err?.message ?? String(e)}\n${process.env.MOPE_DEBUG ? (err?.stack ?? '') : '(set MOPE_DEBUG=1 for a stack trace)'}\n`,
    );
    return 3;
  }
}
