// When to try again after the co-reading socket dropped: exponential backoff
// with jitter, so that a server restart is not met by every viewer in the city
// reconnecting in the same second.

export interface BackoffOptions {
  /** Delay before the first retry, in ms. */
  baseMs: number;
  /** Longest delay, in ms. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** Share of the delay that is random: 0 = none, 0.5 = between half and the full delay. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** The un-jittered ceiling for retry number *attempt* (0-based). */
export function backoffCeiling(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exponent = Math.max(0, Math.floor(attempt));
  // Math.pow overflows to Infinity for large attempts; min() brings it back.
  return Math.min(options.maxMs, options.baseMs * Math.pow(options.factor, exponent));
}

/** The delay before retry number *attempt*: the ceiling minus a random share of up to `jitter` of it. */
export function backoffDelay(
  attempt: number,
  random: () => number = Math.random,
  options: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const ceiling = backoffCeiling(attempt, options);
  const share = Math.min(1, Math.max(0, random()));
  return Math.round(ceiling * (1 - options.jitter + options.jitter * share));
}

/** Counts failed attempts; `reset()` once a connection has proved itself. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next try; each call counts one more attempt. */
  next(): number {
    const delay = backoffDelay(this.attempt, this.random, this.options);
    this.attempt += 1;
    return delay;
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
