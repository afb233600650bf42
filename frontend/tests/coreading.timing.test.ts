import { describe, expect, it } from "vitest";

import { Backoff, backoffCeiling, backoffDelay } from "../src/coreading/backoff";
import { RECONNECT_BACKOFF } from "../src/coreading/client";
import { Coalescer, intervalForRate } from "../src/coreading/throttle";
import { FakeClock } from "./coreading.fakes";

describe("reconnect backoff", () => {
  it("doubles from 0.5 s up to 10 s, as docs/coreading.md asks", () => {
    const ceilings = Array.from({ length: 8 }, (_, attempt) => backoffCeiling(attempt, RECONNECT_BACKOFF));
    expect(ceilings).toEqual([500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
    expect(backoffCeiling(10_000, RECONNECT_BACKOFF)).toBe(10000);
  });

  it("jitters between half and the whole ceiling", () => {
    expect(backoffDelay(3, () => 0, RECONNECT_BACKOFF)).toBe(2000);
    expect(backoffDelay(3, () => 0.999999, RECONNECT_BACKOFF)).toBe(4000);
    expect(backoffDelay(3, () => 0.5, RECONNECT_BACKOFF)).toBe(3000);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(5, Math.random, RECONNECT_BACKOFF);
      expect(delay).toBeGreaterThanOrEqual(5000);
      expect(delay).toBeLessThanOrEqual(10000);
    }
  });

  it("counts attempts until reset", () => {
    const backoff = new Backoff(RECONNECT_BACKOFF, () => 1);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([500, 1000, 2000]);
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.next()).toBe(500);
  });
});

describe("coalescing", () => {
  it("sends the first value at once and then at most one per interval, always the latest", () => {
    const clock = new FakeClock();
    const sent: number[] = [];
    const coalescer = new Coalescer<number>(intervalForRate(20), (value) => sent.push(value), clock);
    coalescer.push(1);
    expect(sent).toEqual([1]);
    for (let value = 2; value <= 10; value++) {
      clock.advance(5);
      coalescer.push(value);
    }
    // 45 ms later: still inside the first 50 ms window, nothing more went out.
    expect(sent).toEqual([1]);
    clock.advance(5);
    expect(sent).toEqual([1, 10]);
    clock.advance(200);
    expect(sent).toEqual([1, 10]);
  });

  it("keeps pointer messages at or under 20 per second however fast the mouse moves", () => {
    const clock = new FakeClock();
    const times: number[] = [];
    const coalescer = new Coalescer<number>(intervalForRate(20), () => times.push(clock.now()), clock);
    for (let ms = 0; ms < 1000; ms++) {
      coalescer.push(ms);
      clock.advance(1);
    }
    clock.advance(100);
    expect(times.length).toBeLessThanOrEqual(21);
    expect(times.length).toBeGreaterThanOrEqual(19);
    for (let i = 1; i < times.length; i++) {
      expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(50);
    }
  });

  it("keeps viewports at or under 10 per second", () => {
    expect(intervalForRate(10)).toBe(100);
  });

  it("flushes the held value before a message that must come after it", () => {
    const clock = new FakeClock();
    const sent: string[] = [];
    const coalescer = new Coalescer<string>(50, (value) => sent.push(value), clock);
    coalescer.push("a");
    coalescer.push("b");
    coalescer.flush();
    sent.push("hidden");
    clock.advance(100);
    expect(sent).toEqual(["a", "b", "hidden"]);
    coalescer.push("c");
    coalescer.push("d");
    coalescer.cancel();
    clock.advance(100);
    expect(sent).toEqual(["a", "b", "hidden", "c"]);
  });
});
