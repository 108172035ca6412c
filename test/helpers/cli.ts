// Runs CLI commands in-process with captured output: each command's register() is given a CliIO whose streams
// collect text, so no test patches process.stdout.
import { Command } from 'commander';
import type { CliIO } from '../../src/cli/io.ts';

export interface Captured extends CliIO {
  stdout: string;
  stderr: string;
}

export function captureIO(): Captured {
  const c: Captured = {
    stdout: '',
    stderr: '',
    out: { write: (s: string) => (c.stdout += s) },
    err: { write: (s: string) => (c.stderr += s) },
  };
  return c;
}

type Register = (program: Command, io: CliIO) => void;

/** Parses `args` with the given commands registered; resolves to the captured output. */
export async function runCommands(registers: Register[], args: string[]): Promise<Captured> {
  const io = captureIO();
  const program = new Command('mope-clip').exitOverride();
  for (const r of registers) r(program, io);
  await program.parseAsync(args, { from: 'user' });
  return io;
}

/** The last stdout line parsed as JSON (every command's result line). */
export function lastJson(c: Captured): any {
  return JSON.parse(c.stdout.trim().split('\n').pop()!);
}
