import { describe, expect, it } from "vitest";

import { advanceFrame, CineClock, clampFps, defaultFrameRate, stepFps } from "../src/cine";

describe("default frame rate", () => {
  it("prefers Recommended Display Frame Rate, then Cine Rate, then Frame Time", () => {
    expect(defaultFrameRate({ "00082144": { vr: "IS", Value: [25] }, "00180040": { vr: "IS", Value: [10] } })).toBe(25);
    expect(defaultFrameRate({ "00180040": { vr: "IS", Value: [10] } })).toBe(10);
    expect(defaultFrameRate({ "00181063": { vr: "DS", Value: ["33.33"] } })).toBe(30);
    expect(defaultFrameRate({})).toBe(15);
  });

  it("clamps to 1–60 fps", () => {
    expect(clampFps(0)).toBe(1);
    expect(clampFps(500)).toBe(60);
    expect(clampFps(Number.NaN)).toBe(15);
    expect(defaultFrameRate({ "00181063": { vr: "DS", Value: [1] } })).toBe(60);
  });

  it("steps finer at low rates", () => {
    expect(stepFps(5, 1)).toBe(6);
    expect(stepFps(15, 1)).toBe(20);
    expect(stepFps(30, 1)).toBe(40);
    expect(stepFps(60, 1)).toBe(60);
    expect(stepFps(1, -1)).toBe(1);
  });
});

describe("CineClock", () => {
  it("advances by elapsed time × rate, carrying the remainder", () => {
    const clock = new CineClock(10);
    expect(clock.tick(0)).toBe(0);
    // 60 Hz callbacks at 10 fps: a frame every 100 ms, never drifting.
    let frames = 0;
    for (let i = 1; i <= 60; i++) {
      frames += clock.tick((i * 1000) / 60);
    }
    expect(frames).toBe(10);
  });

  it("skips frames rather than slowing down when callbacks are late", () => {
    const clock = new CineClock(30);
    clock.tick(0);
    expect(clock.tick(200)).toBe(6);
  });

  it("does not jump ahead after a long pause", () => {
    const clock = new CineClock(20);
    clock.tick(0);
    expect(clock.tick(60_000)).toBe(20);
  });

  it("starts afresh after reset and follows rate changes", () => {
    const clock = new CineClock(10);
    clock.tick(0);
    clock.reset();
    expect(clock.tick(5000)).toBe(0);
    clock.setFps(50);
    expect(clock.tick(5100)).toBe(5);
  });
});

describe("advanceFrame", () => {
  it("loops", () => {
    expect(advanceFrame(28, 3, 30)).toBe(1);
    expect(advanceFrame(0, -1, 30)).toBe(29);
    expect(advanceFrame(5, 1, 0)).toBe(0);
  });
});
