// Where a command writes: its result (stdout) and its messages (stderr). Every command's register() takes one, so
// tests and embedders hand in their own streams instead of patching process.stdout.
export interface OutStream {
  write(s: string): unknown;
}

export interface CliIO {
  out: OutStream;
  err: OutStream;
}

export const processIO: CliIO = { out: process.stdout, err: process.stderr };
