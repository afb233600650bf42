// From DICOMweb answers to what the viewer shows: the series panel's entries
// and, per series, the stack of Cornerstone image ids.

import { frameCount, getNumber, getString, hasPixels, sortInstances, Tag, type DicomJsonDataset } from "./dicomJson";
import { imageIdFor, type ImageScheme, type StudyRef } from "./dicomweb";

export interface SeriesSummary {
  uid: string;
  modality: string;
  description: string;
  number: number | null;
  instanceCount: number | null;
}

/** The QIDO-RS series answer, in series-number order (unnumbered last). */
export function seriesSummaries(qido: readonly DicomJsonDataset[]): SeriesSummary[] {
  return qido
    .map((series) => ({
      uid: getString(series, Tag.SeriesInstanceUID),
      modality: getString(series, Tag.Modality),
      description: getString(series, Tag.SeriesDescription),
      number: getNumber(series, Tag.SeriesNumber),
      instanceCount: getNumber(series, Tag.NumberOfSeriesRelatedInstances),
    }))
    .filter((series) => series.uid !== "")
    .sort((a, b) => (a.number ?? Number.MAX_SAFE_INTEGER) - (b.number ?? Number.MAX_SAFE_INTEGER));
}

export interface StackImage {
  imageId: string;
  sopInstanceUID: string;
  /** 1-based frame within its instance, and the instance's frame count. */
  frame: number;
  frames: number;
  instance: DicomJsonDataset;
}

/**
 * One entry per frame, instances in display order. Objects without pixels
 * (structured reports, presentation states) are left out.
 */
export function stackImages(
  ref: StudyRef,
  seriesUid: string,
  instances: readonly DicomJsonDataset[],
  scheme: ImageScheme = "wadors",
): StackImage[] {
  const images: StackImage[] = [];
  for (const instance of sortInstances(instances.filter(hasPixels))) {
    const sop = getString(instance, Tag.SOPInstanceUID);
    if (!sop) {
      continue;
    }
    const frames = frameCount(instance);
    for (let frame = 1; frame <= frames; frame++) {
      images.push({
        imageId: imageIdFor(scheme, ref, seriesUid, sop, frame, frames),
        sopInstanceUID: sop,
        frame,
        frames,
        instance,
      });
    }
  }
  return images;
}

/** Whether a stack is one multi-frame object (cine loop) rather than a stack of slices. */
export function isCineStack(images: readonly StackImage[]): boolean {
  return images.length > 1 && images.every((image) => image.frames > 1);
}

/**
 * The image to load next: the one nearest to *center* (the image on screen)
 * that is not requested yet, the next one before the previous one; -1 when
 * every image is requested. Asked again each time a request ends, so loading
 * goes outwards from the image on screen and follows the reader who scrolls.
 */
export function nearestPending(requested: ArrayLike<number | boolean>, center: number): number {
  const count = requested.length;
  if (count === 0) {
    return -1;
  }
  const first = Math.min(Math.max(Math.round(center), 0), count - 1);
  for (let distance = 0; distance < count; distance++) {
    const after = first + distance;
    const before = first - distance;
    if (after >= count && before < 0) {
      break;
    }
    if (after < count && !requested[after]) {
      return after;
    }
    if (before >= 0 && !requested[before]) {
      return before;
    }
  }
  return -1;
}

/** Two spacings that are positive, finite numbers; anything else (some CR files say 0\\0) is no spacing. */
function usableSpacing(values: unknown[] | undefined): number[] | null {
  if (!values || values.length < 2) {
    return null;
  }
  const numbers = values.slice(0, 2).map((value) => Number(value));
  return numbers.every((value) => Number.isFinite(value) && value > 0) ? numbers : null;
}

/**
 * Metadata as the image loader's metadata manager needs it. Radiographs and
 * dental images often carry only Imager Pixel Spacing (spacing at the
 * detector); measurements then use it, and the viewer says so on screen.
 * A spacing of zero would make the image's size on screen zero (it was drawn
 * nowhere, at zoom "NaN %"): it is left out, as if absent.
 */
export function withMeasurementSpacing(instance: DicomJsonDataset): {
  metadata: DicomJsonDataset;
  spacing: "pixel" | "imager" | "none";
} {
  const pixel = usableSpacing(instance[Tag.PixelSpacing]?.Value);
  const imager = usableSpacing(instance[Tag.ImagerPixelSpacing]?.Value);
  const rest: DicomJsonDataset = { ...instance };
  delete rest[Tag.PixelSpacing];
  delete rest[Tag.ImagerPixelSpacing];
  if (pixel) {
    return { metadata: instance, spacing: "pixel" };
  }
  if (imager) {
    return { metadata: { ...rest, [Tag.PixelSpacing]: { vr: "DS", Value: imager } }, spacing: "imager" };
  }
  return { metadata: rest, spacing: "none" };
}
