// Text shown beside measurements, in the reader's language. Cornerstone's
// tools compute the numbers (from Pixel Spacing, in modality units — HU for
// CT); this only words them.

import type { Translator } from "./i18n";

export interface RoiStats {
  area?: number;
  areaUnit?: string;
  mean?: number;
  stdDev?: number;
  min?: number;
  max?: number;
  modalityUnit?: string;
  isEmptyArea?: boolean;
}

export interface LengthStats {
  length?: number;
  unit?: string;
}

export interface AngleStats {
  angle?: number;
}

const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

/** Two decimals below 10, one below 100, none above: what a reader can use. */
export function roundMeasurement(value: number): string {
  const abs = Math.abs(value);
  const digits = abs < 10 ? 2 : abs < 100 ? 1 : 0;
  const rounded = Number(value.toFixed(digits));
  return String(Object.is(rounded, -0) ? 0 : rounded);
}

/** Lines for a rectangle or ellipse ROI: area, mean ± SD, min/max. */
export function roiTextLines(stats: RoiStats | undefined, t: Translator): string[] {
  if (!stats) {
    return [];
  }
  const unit = stats.modalityUnit ? ` ${stats.modalityUnit}` : "";
  const lines: string[] = [];
  if (isNumber(stats.area) && !stats.isEmptyArea) {
    lines.push(`${t("stat.area")} ${roundMeasurement(stats.area)} ${stats.areaUnit ?? ""}`.trimEnd());
  }
  if (isNumber(stats.mean)) {
    const sd = isNumber(stats.stdDev) ? ` (${t("stat.sd")} ${roundMeasurement(stats.stdDev)})` : "";
    lines.push(`${t("stat.mean")} ${roundMeasurement(stats.mean)}${unit}${sd}`);
  }
  if (isNumber(stats.min) && isNumber(stats.max)) {
    lines.push(`${t("stat.min")} ${roundMeasurement(stats.min)} / ${t("stat.max")} ${roundMeasurement(stats.max)}${unit}`);
  }
  return lines;
}

export function lengthTextLines(stats: LengthStats | undefined): string[] {
  if (!stats || !isNumber(stats.length)) {
    return [];
  }
  return [`${roundMeasurement(stats.length)} ${stats.unit ?? "mm"}`];
}

export function angleTextLines(stats: AngleStats | undefined): string[] {
  if (!stats || !isNumber(stats.angle)) {
    return [];
  }
  return [`${roundMeasurement(stats.angle)}°`];
}
