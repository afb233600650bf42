// Loading milestones as Performance API marks, for bench/viewer_bench.py and
// the browser's own profiler: a mark's startTime counts from the start of the
// navigation that opened the viewer.

export const MARKS = {
  /** The viewer's entry chunk runs: the first image's requests start (preload.ts). */
  start: "clinicnet:viewer-start",
  /** The viewer chunk (Cornerstone, vtk.js) has been loaded and parsed. */
  viewerCode: "clinicnet:viewer-code",
  /** Cornerstone, its image loader and decode workers are initialised. */
  cornerstoneReady: "clinicnet:cornerstone-ready",
  /** The first series' metadata is in and its stack is about to be shown. */
  stackReady: "clinicnet:stack-ready",
  /** The first image of the first series is on screen. */
  firstImage: "clinicnet:first-image",
  /** Every image of the first series shown is in memory (or failed). */
  allLoaded: "clinicnet:all-loaded",
} as const;

/** Set *name* once per page; later calls are ignored. */
export function markOnce(name: string): void {
  if (typeof performance === "undefined" || performance.getEntriesByName(name, "mark").length > 0) {
    return;
  }
  performance.mark(name);
}
