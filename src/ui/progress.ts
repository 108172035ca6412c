// Terminal output for long work: a one-line progress bar with count, rate and ETA on stderr. On a TTY the bar is
// redrawn in place; when stderr is a file or a pipe (a run under nohup, a CI log) the same line is printed as its
// own line once a minute (MOPE_PROGRESS_SECONDS), so a log of a long run still shows the rate and the ETA.
// Every long stage (scoring, data export, embedding, training) draws through this one class.

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** Items per second, or per minute / per hour when fewer than 0.1 a second (slow modules of a large model). */
export function fmtRate(perS: number): string {
  if (perS >= 0.1 || perS === 0) return `${perS.toFixed(1)}/s`;
  if (perS * 60 >= 0.1) return `${(perS * 60).toFixed(1)}/min`;
  return `${(perS * 3600).toFixed(1)}/h`;
}

/** Seconds between progress lines when stderr is not a TTY: MOPE_PROGRESS_SECONDS (default 60; 0 = none). */
export function progressLineSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.MOPE_PROGRESS_SECONDS;
  if (v === undefined || v === '') return 60;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : 60;
}

/**
 * A one-line progress bar on stderr: "label  [####----]  1234/5000  56.3/s  ETA 1m07s". On a TTY it is drawn first
 * after `delayMs` (so short jobs print nothing), then at most every 250 ms; elsewhere it is printed as a line
 * every `lineSeconds` (default progressLineSeconds()), the first after that interval too, the last at finish()
 * when any was printed.
 */
export class Progress {
  private done = 0;
  private readonly base: number;
  private readonly t0 = Date.now();
  private lastDraw = 0;
  private drawn = false;
  private lineDone = -1;
  readonly enabled: boolean;
  private readonly tty: boolean;
  private readonly delayMs: number;

  constructor(
    readonly total: number,
    readonly label: string,
    readonly stream: NodeJS.WriteStream = process.stderr,
    opts: { enabled?: boolean; delayMs?: number; lineSeconds?: number; done?: number } = {},
  ) {
    // items already done when the bar starts (a resumed run) count in the total, not in the rate
    this.done = this.base = opts.done ?? 0;
    this.tty = Boolean(stream.isTTY);
    const lineMs = (opts.lineSeconds ?? progressLineSeconds()) * 1000;
    // off when asked, or in a log with lines turned off (MOPE_PROGRESS_SECONDS=0: never a line per tick)
    this.enabled = (opts.enabled ?? true) && (this.tty || lineMs > 0);
    this.delayMs = this.tty ? (opts.delayMs ?? 1500) : lineMs;
    this.lastDraw = this.tty ? 0 : this.t0;
  }

  /** Advances to `done` items (for callers that know the count rather than the increment). */
  update(done: number): void {
    this.tick(done - this.done);
  }

  tick(n = 1): void {
    this.done += n;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.t0 < this.delayMs) return;
    if (!this.tty) {
      if (now - this.lastDraw < this.delayMs) return;
      this.lastDraw = now;
      this.stream.write(this.line(now) + '\n');
      this.drawn = true;
      this.lineDone = this.done;
      return;
    }
    if (now - this.lastDraw < 250 && this.done < this.total) return;
    this.lastDraw = now;
    this.stream.write('\r' + this.line(now) + '\x1b[K');
    this.drawn = true;
  }

  /** The text of the bar at time `now` (exposed for tests). */
  line(now = Date.now()): string {
    const secs = Math.max((now - this.t0) / 1000, 1e-9);
    const rate = (this.done - this.base) / secs;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 20;
    const fill = Math.round(frac * width);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    return `${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${this.done}/${this.total} ${fmtRate(rate)} ETA ${fmtDuration(eta)}`;
  }

  /** Ends the line (only if something was drawn). */
  finish(): void {
    if (this.drawn && this.tty) this.stream.write('\r' + this.line() + '\x1b[K\n');
    else if (this.drawn && this.lineDone !== this.done) this.stream.write(this.line() + '\n');
    this.drawn = false;
  }
}

/**
 * An onProgress(done, total) callback that draws one bar per run of the work it is given to: a bar starts at the
 * first call (items already done then are a resumed run's) and finishes when done reaches total.
 */
export function progressCallback(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  opts: { lineSeconds?: number } = {},
): (done: number, total: number) => void {
  let bar: Progress | null = null;
  return (done, total) => {
    bar ??= new Progress(total, label, stream, { delayMs: 0, done, ...opts });
    bar.update(done);
    if (done >= total) {
      bar.finish();
      bar = null;
    }
  };
}
