// Test doubles for the co-reading client: a clock moved by hand and a socket that records.

import type { Clock } from "../src/coreading/throttle";

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  time = 0;
  private timers: { at: number; callback: () => void; handle: number }[] = [];
  private handles = 0;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const handle = ++this.handles;
    this.timers.push({ at: this.time + ms, callback, handle });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((timer) => timer.handle !== handle);
  }

  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) {
        break;
      }
      this.timers.shift();
      this.time = next.at;
      next.callback();
    }
    this.time = until;
  }

  get pending(): number {
    return this.timers.length;
  }
}

/** A socket that records what the client sends; the test plays the server. */
export class FakeSocket {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason?: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(text: string): void {
    this.sent.push(JSON.parse(text) as Record<string, unknown>);
  }

  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  /** The server accepted the connection. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** A frame from the server. */
  deliver(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  /** The server (or the network) ended the connection. */
  drop(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }

  types(): string[] {
    return this.sent.map((message) => String(message.type));
  }

  last(type: string): Record<string, unknown> | undefined {
    return [...this.sent].reverse().find((message) => message.type === type);
  }
}
