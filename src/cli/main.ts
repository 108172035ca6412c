// mope-clip CLI: one file per command under src/cli/; this file wires them and maps errors to exit codes.
import { Command, CommanderError } from 'commander';
import { isUserError } from '../errors.ts';

type Register = (program: Command) => void;

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

export async function buildProgram(): Promise<Command> {
  const program = new Command('mope-clip')
    .description('Compress CLIP models with MoPE-CLIP: score modules, prune structurally, distil, evaluate, export.')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError(false);
  for (const load of COMMANDS) {
    const mod = await load();
    mod.register(program);
  }
  return program;
}

/** Runs the CLI; returns the process exit code (0 ok, 1 user error, 2 usage error, 3 internal error). */
export async function main(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram();
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (isUserError(e)) {
      process.stderr.write(`mope-clip: ${e.message}\n`);
      return 1;
    }
    const err = e as Error;
    process.stderr.write(`mope-clip: internal error: ${err?.message ?? String(e)}\n${process.env.MOPE_DEBUG ? err?.stack ?? '' : '(set MOPE_DEBUG=1 for a stack trace)'}\n`);
    return 3;
  }
}
