// Rate limits for what the leader and the pointer send: at most one message
// per interval, always the latest value, and the last value of a burst is
// never lost (it goes out when the interval is over).

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Hz → the shortest gap between two messages, in ms. */
export function intervalForRate(hertz: number): number {
  return Math.ceil(1000 / hertz);
}

export class Coalescer<T> {
  private lastSent = Number.NEGATIVE_INFINITY;
  private pending: { value: T } | null = null;
  private timer: unknown = null;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (value: T) => void,
    private readonly clock: Clock = realClock,
  ) {}

  /** Offer a new value: sent now if the interval has passed, else kept (replacing an older one) until it has. */
  push(value: T): void {
    const now = this.clock.now();
    const wait = this.lastSent + this.intervalMs - now;
    if (wait <= 0 && this.timer === null) {
      this.emit(value, now);
      return;
    }
    this.pending = { value };
    if (this.timer === null) {
      this.timer = this.clock.setTimeout(() => this.onTimer(), Math.max(0, wait));
    }
  }

  /** Send the held value at once (before a message that must follow it, e.g. the pointer leaving). */
  flush(): void {
    this.stopTimer();
    if (this.pending) {
      const { value } = this.pending;
      this.pending = null;
      this.emit(value, this.clock.now());
    }
  }

  /** Forget the held value. */
  cancel(): void {
    this.stopTimer();
    this.pending = null;
  }

  get hasPending(): boolean {
    return this.pending !== null;
  }

  private onTimer(): void {
    this.timer = null;
    if (this.pending) {
      const { value } = this.pending;
      this.pending = null;
      this.emit(value, this.clock.now());
    }
  }

  private emit(value: T, now: number): void {
    this.lastSent = now;
    this.send(value);
  }

  private stopTimer(): void {
    if (this.timer !== null) {
      this.clock.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
