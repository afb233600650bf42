// Which series is in which viewport, and which viewport is active. Pure state;
// the viewer renders it.

import type { LayoutId } from "./keyboard";

export const LAYOUTS: Record<LayoutId, { rows: number; columns: number }> = {
  "1x1": { rows: 1, columns: 1 },
  "1x2": { rows: 1, columns: 2 },
  "2x2": { rows: 2, columns: 2 },
};

export function cellCount(layout: LayoutId): number {
  const { rows, columns } = LAYOUTS[layout];
  return rows * columns;
}

export interface LayoutState {
  layout: LayoutId;
  /** Series UID per cell, or null for an empty cell; length = cellCount(layout). */
  cells: (string | null)[];
  active: number;
}

export function initialLayout(seriesUids: readonly string[], layout: LayoutId = "1x1"): LayoutState {
  return fillEmptyCells({ layout, cells: new Array<string | null>(cellCount(layout)).fill(null), active: 0 }, seriesUids);
}

/** Empty cells get the first series not shown yet, in the series panel's order. */
function fillEmptyCells(state: LayoutState, seriesUids: readonly string[]): LayoutState {
  const shown = new Set(state.cells.filter((uid): uid is string => uid !== null));
  const waiting = seriesUids.filter((uid) => !shown.has(uid));
  const cells = state.cells.map((uid) => uid ?? waiting.shift() ?? null);
  return { ...state, cells };
}

/**
 * Change the grid. Cells keep their series in reading order; a smaller grid
 * keeps the first cells (and the active one moves into range); a larger one
 * fills its new cells with series not shown yet.
 */
export function setLayout(state: LayoutState, layout: LayoutId, seriesUids: readonly string[]): LayoutState {
  const count = cellCount(layout);
  const cells = Array.from({ length: count }, (_, index) => state.cells[index] ?? null);
  let active = state.active;
  if (active >= count) {
    // Keep the series the reader was looking at on screen.
    const activeSeries = state.cells[state.active] ?? null;
    cells[count - 1] = activeSeries ?? cells[count - 1];
    active = count - 1;
  }
  return fillEmptyCells({ layout, cells, active }, seriesUids);
}

/** Put a series into a cell (drag and drop, double-click) and make that cell active. */
export function assignSeries(state: LayoutState, cell: number, seriesUid: string): LayoutState {
  if (cell < 0 || cell >= state.cells.length) {
    return state;
  }
  const cells = [...state.cells];
  cells[cell] = seriesUid;
  return { ...state, cells, active: cell };
}

export function setActive(state: LayoutState, cell: number): LayoutState {
  return cell >= 0 && cell < state.cells.length ? { ...state, active: cell } : state;
}

export function nextActive(state: LayoutState): LayoutState {
  return { ...state, active: (state.active + 1) % state.cells.length };
}
