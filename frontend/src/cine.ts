// Cine playback timing for multi-frame objects (US, XA) and stacks.

import { getNumber, Tag, type DicomJsonDataset } from "./dicomJson";

export const MIN_FPS = 1;
export const MAX_FPS = 60;
const DEFAULT_FPS = 15;

export function clampFps(fps: number): number {
  if (!Number.isFinite(fps)) {
    return DEFAULT_FPS;
  }
  return Math.min(MAX_FPS, Math.max(MIN_FPS, Math.round(fps)));
}

/**
 * The frame rate the object asks for: Recommended Display Frame Rate, then
 * Cine Rate, then Frame Time (ms per frame); 15 fps when none is given.
 */
export function defaultFrameRate(instance: DicomJsonDataset | undefined): number {
  const recommended = getNumber(instance, Tag.RecommendedDisplayFrameRate);
  if (recommended !== null && recommended > 0) {
    return clampFps(recommended);
  }
  const cineRate = getNumber(instance, Tag.CineRate);
  if (cineRate !== null && cineRate > 0) {
    return clampFps(cineRate);
  }
  const frameTime = getNumber(instance, Tag.FrameTime);
  if (frameTime !== null && frameTime > 0) {
    return clampFps(1000 / frameTime);
  }
  return DEFAULT_FPS;
}

/** Steps of the frame-rate control: finer at low rates, where the eye notices. */
export function stepFps(fps: number, direction: 1 | -1): number {
  const step = fps < 10 ? 1 : fps < 30 ? 5 : 10;
  return clampFps(fps + direction * step);
}

/**
 * Turns animation-frame timestamps into whole frames to advance. Keeps the
 * remainder, so playback holds its rate even when the browser's callbacks
 * are irregular, and skips frames rather than slowing down when decoding lags.
 */
export class CineClock {
  private last: number | null = null;
  private carry = 0;

  constructor(private fps: number) {
    this.fps = clampFps(fps);
  }

  get framesPerSecond(): number {
    return this.fps;
  }

  setFps(fps: number): void {
    this.fps = clampFps(fps);
  }

  reset(): void {
    this.last = null;
    this.carry = 0;
  }

  /** Frames to advance at time *now* (ms); 0 on the first call. */
  tick(now: number): number {
    if (this.last === null) {
      this.last = now;
      return 0;
    }
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    // After a long pause (tab in the background) do not jump ahead.
    const exact = Math.min(elapsed, 1000) * (this.fps / 1000) + this.carry;
    const whole = Math.floor(exact);
    this.carry = exact - whole;
    return whole;
  }
}

/** The frame index after advancing *by* frames in a loop of *count* frames. */
export function advanceFrame(current: number, by: number, count: number): number {
  if (count <= 0) {
    return 0;
  }
  return (((current + by) % count) + count) % count;
}
