import { describe, expect, it } from "vitest";

import { assignSeries, cellCount, initialLayout, nextActive, setActive, setLayout } from "../src/layout";

const series = ["s1", "s2", "s3", "s4", "s5"];

describe("layout state", () => {
  it("starts with the first series in one viewport", () => {
    expect(initialLayout(series)).toEqual({ layout: "1x1", cells: ["s1"], active: 0 });
    expect(initialLayout([], "1x2")).toEqual({ layout: "1x2", cells: [null, null], active: 0 });
  });

  it("has 1, 2 and 4 cells", () => {
    expect([cellCount("1x1"), cellCount("1x2"), cellCount("2x2")]).toEqual([1, 2, 4]);
  });

  it("fills new cells with series not shown yet", () => {
    const state = setLayout(initialLayout(series), "2x2", series);
    expect(state.cells).toEqual(["s1", "s2", "s3", "s4"]);
  });

  it("keeps what the reader put where when growing", () => {
    let state = assignSeries(initialLayout(series), 0, "s4");
    state = setLayout(state, "1x2", series);
    expect(state.cells).toEqual(["s4", "s1"]);
  });

  it("keeps the active series on screen when shrinking", () => {
    let state = setLayout(initialLayout(series), "2x2", series);
    state = setActive(state, 3);
    state = setLayout(state, "1x1", series);
    expect(state).toEqual({ layout: "1x1", cells: ["s4"], active: 0 });
  });

  it("makes the drop target active", () => {
    const state = assignSeries(setLayout(initialLayout(series), "1x2", series), 1, "s5");
    expect(state.cells).toEqual(["s1", "s5"]);
    expect(state.active).toBe(1);
  });

  it("ignores drops and clicks outside the grid", () => {
    const state = initialLayout(series);
    expect(assignSeries(state, 3, "s2")).toBe(state);
    expect(setActive(state, -1)).toBe(state);
  });

  it("cycles the active viewport", () => {
    let state = setLayout(initialLayout(series), "1x2", series);
    state = nextActive(state);
    expect(state.active).toBe(1);
    expect(nextActive(state).active).toBe(0);
  });

  it("shows the same series twice only when the reader asks", () => {
    const state = assignSeries(setLayout(initialLayout(["a", "b"]), "1x2", ["a", "b"]), 1, "a");
    expect(state.cells).toEqual(["a", "a"]);
    expect(setLayout(state, "2x2", ["a", "b"]).cells).toEqual(["a", "a", "b", null]);
  });
});
