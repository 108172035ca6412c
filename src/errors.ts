// Typed errors raised at the boundary for user mistakes (bad files, bad flags, bad data).
// The CLI prints `message` as one paragraph and exits non-zero, never a stack trace.

export class MopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
/** A config.json / preprocessor_config.json / flag value that is missing or of the wrong form. */
export class ConfigError extends MopeError {}
/** A checkpoint file (safetensors, index, tokenizer files) that is missing, truncated or inconsistent. */
export class CheckpointError extends MopeError {}
/** A data file, image or caption that cannot be read or does not match its declared layout. */
export class DataError extends MopeError {}
/** A command line that asks for nothing to do or combines flags that cannot go together (exit code 2). */
export class UsageError extends MopeError {}
/** An output path that cannot be written: inside an input, the wrong kind (file vs folder), unwritable. */
export class OutputError extends MopeError {}
/** Tensor or array dimensions that do not match what a kernel or model expects. */
export class ShapeError extends MopeError {}

/** True for errors whose message alone is a complete explanation for a user. */
export function isUserError(e: unknown): e is MopeError {
  return e instanceof MopeError;
}

/** The process exit code of a user error: 2 for a usage error, 1 otherwise. */
export function exitCodeOf(e: MopeError): 1 | 2 {
  return e instanceof UsageError ? 2 : 1;
}

/** A failure of the multi-process (MPI) run: a collective that timed out or failed, or a rank that could not start. */
export class DistError extends MopeError {}
