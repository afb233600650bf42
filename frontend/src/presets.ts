// Window/level: presets per modality and the arithmetic between a window
// (center, width) and Cornerstone's VOI range (lower, upper), in modality
// units (Hounsfield units for CT).

import { getNumber, Tag, type DicomJsonDataset } from "./dicomJson";
import type { MessageKey } from "./i18n";

export interface Window {
  center: number;
  width: number;
}

export interface VoiRange {
  lower: number;
  upper: number;
}

export interface WindowPreset extends Window {
  id: string;
  label: MessageKey;
}

/**
 * CT presets (HU). Standard teaching values (e.g. Radiopaedia, "Windowing (CT)"):
 * brain W80 L40, subdural W215 L75, stroke W40 L40, lung W1500 L-600,
 * mediastinum W350 L50, abdomen soft tissue W400 L40, liver W150 L30,
 * bone W1800 L400, temporal bone W2800 L600. The first eight are on keys 2–9.
 */
export const CT_PRESETS: readonly WindowPreset[] = [
  { id: "brain", label: "wl.brain", center: 40, width: 80 },
  { id: "lung", label: "wl.lung", center: -600, width: 1500 },
  { id: "mediastinum", label: "wl.mediastinum", center: 50, width: 350 },
  { id: "abdomen", label: "wl.abdomen", center: 40, width: 400 },
  { id: "bone", label: "wl.bone", center: 400, width: 1800 },
  { id: "subdural", label: "wl.subdural", center: 75, width: 215 },
  { id: "stroke", label: "wl.stroke", center: 40, width: 40 },
  { id: "liver", label: "wl.liver", center: 30, width: 150 },
  { id: "temporalBone", label: "wl.temporalBone", center: 600, width: 2800 },
];

/**
 * Fixed presets only make sense where pixel values have a physical meaning
 * (CT). MR, radiographs, ultrasound and dental images have arbitrary scales:
 * they get the file's window and the full range only.
 */
export function presetsForModality(modality: string): readonly WindowPreset[] {
  switch (modality.trim().toUpperCase()) {
    case "CT":
      return CT_PRESETS;
    default:
      return [];
  }
}

/**
 * DICOM's LINEAR VOI function (PS3.3 C.11.2.1.2), as Cornerstone applies it:
 * values up to c − 0.5 − (w − 1)/2 are black, from c − 0.5 + (w − 1)/2 white.
 * Using the same formula both ways means a file's "W 400 L 40" reads back as
 * W 400 L 40, not W 399.
 */
export function voiRangeFromWindow({ center, width }: Window): VoiRange {
  const w = Math.max(width, 1);
  return { lower: center - 0.5 - (w - 1) / 2, upper: center - 0.5 + (w - 1) / 2 };
}

export function windowFromVoiRange({ lower, upper }: VoiRange): Window {
  return { center: (lower + upper + 1) / 2, width: Math.abs(upper - lower) + 1 };
}

/**
 * The window the file recommends (Window Center/Width, first of several), or
 * null when it gives none or a width below 1 (invalid per PS3.3 C.11.2.1.2).
 */
export function fileWindow(instance: DicomJsonDataset | undefined): Window | null {
  const center = getNumber(instance, Tag.WindowCenter);
  const width = getNumber(instance, Tag.WindowWidth);
  if (center === null || width === null || width < 1) {
    return null;
  }
  return { center, width };
}

/** A window spanning a pixel range (the "full range" preset). */
export function windowForRange(min: number, max: number): Window {
  return windowFromVoiRange({ lower: min, upper: Math.max(max, min) });
}

/** "W 400 L 40": integers, as radiologists read them; fractions only for narrow ranges (PET, MR maps). */
export function formatWindowValue(value: number): string {
  const rounded = Math.abs(value) >= 10 ? Math.round(value) : Math.round(value * 100) / 100;
  return Object.is(rounded, -0) ? "0" : String(rounded);
}
