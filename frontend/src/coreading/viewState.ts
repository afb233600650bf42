// The leader's view as a protocol viewport, and back: the arithmetic that does
// not need Cornerstone (which cell shows what, pan units, what counts as a
// change worth sending). The Cornerstone side is in bridge.ts.

import type { LayoutId, Viewport, ViewportCell } from "./protocol";

export const DEFAULT_CELL: Omit<ViewportCell, "series"> = {
  image: 0,
  window: null,
  zoom: 1,
  pan: [0, 0],
  rotation: 0,
  flip: { h: false, v: false },
  invert: false,
};

/**
 * A viewport from what each cell shows (null: empty or not ready). An empty
 * cell borrows the first shown series at its default view, because protocol
 * v1 wants a series in every cell (docs/coreading-client-notes.md, question 1).
 * Nothing shown anywhere: null, nothing to send.
 */
export function viewportFromCells(layout: LayoutId, active: number, cells: (ViewportCell | null)[]): Viewport | null {
  const first = cells.find((cell): cell is ViewportCell => cell !== null && cell.series !== null);
  if (!first) {
    return null;
  }
  return {
    layout,
    active,
    cells: cells.map((cell) => (cell && cell.series !== null ? cell : { ...DEFAULT_CELL, series: first.series })),
  };
}

/**
 * Screen pixels → image pixels and back. *scale* is screen (CSS) pixels per
 * image pixel at the current zoom; the protocol's pan is in image pixels so
 * that it means the same on every screen (client notes, question 2).
 */
export function panToImage(pan: [number, number], scale: number): [number, number] {
  return scale > 0 && Number.isFinite(scale) ? [pan[0] / scale, pan[1] / scale] : [0, 0];
}

export function panToScreen(pan: [number, number], scale: number): [number, number] {
  return scale > 0 && Number.isFinite(scale) ? [pan[0] * scale, pan[1] * scale] : [0, 0];
}

const close = (a: number, b: number, tolerance: number) => Math.abs(a - b) <= tolerance;

/** Whether two cells look the same on screen (small float noise ignored). */
export function sameCell(a: ViewportCell, b: ViewportCell): boolean {
  return (
    a.series === b.series &&
    a.image === b.image &&
    a.invert === b.invert &&
    a.flip.h === b.flip.h &&
    a.flip.v === b.flip.v &&
    close(a.rotation, b.rotation, 0.5) &&
    close(a.zoom, b.zoom, 0.005) &&
    close(a.pan[0], b.pan[0], 0.5) &&
    close(a.pan[1], b.pan[1], 0.5) &&
    ((a.window === null && b.window === null) ||
      (a.window !== null && b.window !== null && close(a.window.center, b.window.center, 0.5) && close(a.window.width, b.window.width, 0.5)))
  );
}

export function sameViewport(a: Viewport | null, b: Viewport | null): boolean {
  if (a === null || b === null) {
    return a === b;
  }
  return a.layout === b.layout && a.active === b.active && a.cells.length === b.cells.length && a.cells.every((cell, i) => sameCell(cell, b.cells[i]));
}
