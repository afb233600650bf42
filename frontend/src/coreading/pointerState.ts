// Everyone else's laser pointers: the latest position per connection, a short
// trail, and how visible each is now. A pointer stays bright while it moves,
// fades out over a second after 2 s without news (3 s after the last one it is
// gone, as docs/coreading.md asks), and fades quickly when its owner hides it.

import type { PointerData } from "./protocol";

export const HOLD_MS = 2000;
export const FADE_MS = 1000;
export const HIDE_FADE_MS = 300;
export const TRAIL_MS = 450;

export interface PointerSample {
  x: number;
  y: number;
  at: number;
}

export interface PointerEntry {
  from: string;
  series: string;
  image: number;
  x: number;
  y: number;
  at: number;
  hiddenAt: number | null;
  trail: PointerSample[];
}

export function opacityAt(entry: Pick<PointerEntry, "at" | "hiddenAt">, now: number): number {
  if (entry.hiddenAt !== null) {
    return Math.max(0, 1 - (now - entry.hiddenAt) / HIDE_FADE_MS);
  }
  const age = now - entry.at;
  if (age <= HOLD_MS) {
    return 1;
  }
  return Math.max(0, 1 - (age - HOLD_MS) / FADE_MS);
}

export class Pointers {
  private readonly entries = new Map<string, PointerEntry>();

  update(from: string, data: PointerData, now: number): void {
    const entry = this.entries.get(from);
    if ("hidden" in data) {
      if (entry && entry.hiddenAt === null) {
        entry.hiddenAt = now;
      }
      return;
    }
    const sameImage = entry && entry.series === data.series && entry.image === data.image && entry.hiddenAt === null;
    const trail = sameImage ? [...entry.trail, { x: entry.x, y: entry.y, at: entry.at }].filter((s) => now - s.at <= TRAIL_MS) : [];
    this.entries.set(from, { from, series: data.series, image: data.image, x: data.x, y: data.y, at: now, hiddenAt: null, trail });
  }

  /** Someone left: their pointer goes at once. */
  remove(from: string): void {
    this.entries.delete(from);
  }

  /** The pointers to draw now with their opacity; faded ones are forgotten. */
  visible(now: number): { entry: PointerEntry; opacity: number }[] {
    const shown: { entry: PointerEntry; opacity: number }[] = [];
    for (const [from, entry] of [...this.entries]) {
      const opacity = opacityAt(entry, now);
      if (opacity <= 0) {
        this.entries.delete(from);
        continue;
      }
      entry.trail = entry.trail.filter((sample) => now - sample.at <= TRAIL_MS);
      shown.push({ entry, opacity });
    }
    return shown;
  }

  get size(): number {
    return this.entries.size;
  }
}
