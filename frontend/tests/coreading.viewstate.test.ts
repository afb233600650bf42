import { describe, expect, it } from "vitest";

import type { ViewportCell } from "../src/coreading/protocol";
import { DEFAULT_CELL, panToImage, panToScreen, sameViewport, viewportFromCells } from "../src/coreading/viewState";

const cell = (series: string, image = 3): ViewportCell => ({ ...DEFAULT_CELL, series, image, window: { center: 40, width: 400 }, zoom: 2 });

describe("the leader's viewport", () => {
  it("lists every cell of the layout", () => {
    expect(viewportFromCells("1x2", 1, [cell("1.1"), cell("1.2", 7)])).toEqual({ layout: "1x2", active: 1, cells: [cell("1.1"), cell("1.2", 7)] });
  });

  it("fills an empty or loading cell with the first shown series at its default view", () => {
    const viewport = viewportFromCells("2x2", 0, [null, cell("1.2"), null, null]);
    expect(viewport?.cells.map((c) => c.series)).toEqual(["1.2", "1.2", "1.2", "1.2"]);
    expect(viewport?.cells[0]).toEqual({ ...DEFAULT_CELL, series: "1.2" });
  });

  it("is nothing while no cell shows anything", () => {
    expect(viewportFromCells("1x1", 0, [null])).toBeNull();
  });
});

describe("pan", () => {
  it("goes out in image pixels and comes back in this screen's pixels", () => {
    // The leader's screen shows 2 screen pixels per image pixel, the follower's 0.5.
    const sent = panToImage([40, -20], 2);
    expect(sent).toEqual([20, -10]);
    expect(panToScreen(sent, 0.5)).toEqual([10, -5]);
  });

  it("is zero when the scale is unknown (no image yet)", () => {
    expect(panToImage([40, 20], 0)).toEqual([0, 0]);
    expect(panToScreen([40, 20], Number.NaN)).toEqual([0, 0]);
  });
});

describe("sending only changes", () => {
  it("treats float noise as no change, and a new image or window as one", () => {
    const a = viewportFromCells("1x1", 0, [cell("1.1")]);
    const noisy = viewportFromCells("1x1", 0, [{ ...cell("1.1"), zoom: 2.0001, pan: [0.1, -0.2] }]);
    expect(sameViewport(a, noisy)).toBe(true);
    expect(sameViewport(a, viewportFromCells("1x1", 0, [cell("1.1", 4)]))).toBe(false);
    expect(sameViewport(a, viewportFromCells("1x1", 0, [{ ...cell("1.1"), window: { center: 40, width: 80 } }]))).toBe(false);
    expect(sameViewport(a, null)).toBe(false);
  });
});
