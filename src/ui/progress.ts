// Terminal output for long work: a one-line progress bar with count, rate and ETA on stderr (TTY only).
// Every long stage (scoring, data export, embedding, training) draws through this one class.

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * A one-line progress bar on stderr: "label  [####----]  1234/5000  56.3/s  ETA 1m07s". Drawn only when
 * the stream is a TTY, first after `delayMs` (so short jobs print nothing), then at most every 250 ms.
 */
export class Progress {
  private done = 0;
  private readonly t0 = Date.now();
  private lastDraw = 0;
  private drawn = false;
  readonly enabled: boolean;

  constructor(
    readonly total: number,
    readonly label: string,
    readonly stream: NodeJS.WriteStream = process.stderr,
    opts: { enabled?: boolean; delayMs?: number } = {},
  ) {
    this.enabled = opts.enabled ?? Boolean(stream.isTTY);
    this.delayMs = opts.delayMs ?? 1500;
  }
  private readonly delayMs: number;

  tick(n = 1): void {
    this.done += n;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.t0 < this.delayMs) return;
    if (now - this.lastDraw < 250 && this.done < this.total) return;
    this.lastDraw = now;
    this.stream.write('\r' + this.line(now) + '\x1b[K');
    this.drawn = true;
  }

  /** The text of the bar at time `now` (exposed for tests). */
  line(now = Date.now()): string {
    const secs = Math.max((now - this.t0) / 1000, 1e-9);
    const rate = this.done / secs;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 20;
    const fill = Math.round(frac * width);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    return `${this.label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${this.done}/${this.total} ${rate.toFixed(1)}/s ETA ${fmtDuration(eta)}`;
  }

  /** Ends the line (only if something was drawn). */
  finish(): void {
    if (this.drawn) this.stream.write('\r' + this.line() + '\x1b[K\n');
    this.drawn = false;
  }
}
