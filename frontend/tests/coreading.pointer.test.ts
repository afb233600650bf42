import { describe, expect, it } from "vitest";

import { FADE_MS, HIDE_FADE_MS, HOLD_MS, opacityAt, Pointers, TRAIL_MS } from "../src/coreading/pointerState";

const at = (x: number, image = 3) => ({ series: "1.2.3", image, x, y: 10 });

describe("laser pointers", () => {
  it("stay bright for 2 s, then fade out and are gone 3 s after the last position", () => {
    const pointers = new Pointers();
    pointers.update("c1", at(5), 0);
    expect(pointers.visible(HOLD_MS)[0].opacity).toBe(1);
    expect(pointers.visible(HOLD_MS + FADE_MS / 2)[0].opacity).toBeCloseTo(0.5);
    expect(pointers.visible(HOLD_MS + FADE_MS)).toEqual([]);
    expect(pointers.size).toBe(0);
  });

  it("fade quickly when their owner hides them", () => {
    expect(opacityAt({ at: 0, hiddenAt: 100 }, 100 + HIDE_FADE_MS / 2)).toBeCloseTo(0.5);
    const pointers = new Pointers();
    pointers.update("c1", at(5), 0);
    pointers.update("c1", { hidden: true }, 100);
    expect(pointers.visible(100 + HIDE_FADE_MS)).toEqual([]);
  });

  it("keep one pointer per participant, with a short trail on the same image", () => {
    const pointers = new Pointers();
    pointers.update("c1", at(1), 0);
    pointers.update("c1", at(2), 50);
    pointers.update("c2", at(9), 60);
    pointers.update("c1", at(3), 100);
    const shown = pointers.visible(100);
    expect(shown.map((p) => p.entry.from).sort()).toEqual(["c1", "c2"]);
    const c1 = shown.find((p) => p.entry.from === "c1")!.entry;
    expect(c1.x).toBe(3);
    expect(c1.trail.map((s) => s.x)).toEqual([1, 2]);
    expect(pointers.visible(100 + TRAIL_MS + 1).find((p) => p.entry.from === "c1")!.entry.trail).toEqual([]);
  });

  it("start a fresh trail on another image", () => {
    const pointers = new Pointers();
    pointers.update("c1", at(1, 3), 0);
    pointers.update("c1", at(2, 4), 20);
    expect(pointers.visible(20)[0].entry.trail).toEqual([]);
  });
});
