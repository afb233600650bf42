// Loading milestones as Performance API marks, for bench/viewer_bench.py and
// the browser's own profiler: a mark's startTime counts from the start of the
// navigation that opened the viewer.

export const MARKS = {
  /** The viewer bundle has been parsed and starts running. */
  start: "clinicnet:viewer-start",
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
