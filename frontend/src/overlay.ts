// The four corners of text on each viewport, from the instance's metadata and
// the viewport's state.

import {
  formatAge,
  formatDate,
  formatTime,
  getNumber,
  getPersonName,
  getString,
  Tag,
  type DicomJsonDataset,
} from "./dicomJson";
import type { Translator } from "./i18n";
import { formatWindowValue, type Window } from "./presets";

export interface ViewState {
  /** 0-based position in the stack, and the stack's length. */
  imageIndex: number;
  imageCount: number;
  /** 1-based frame of a multi-frame instance, and its frame count (1 if single-frame). */
  frame: number;
  frames: number;
  window: Window | null;
  /** Displayed size relative to the image's pixels (1 = one image pixel per screen pixel). */
  zoom: number;
  fps?: number | null;
}

export interface OverlayText {
  topLeft: string[];
  topRight: string[];
  bottomLeft: string[];
  bottomRight: string[];
}

function sexLabel(sex: string, t: Translator): string {
  switch (sex.toUpperCase()) {
    case "M":
      return t("sex.M");
    case "F":
      return t("sex.F");
    case "O":
      return t("sex.O");
    default:
      return "";
  }
}

function joined(...parts: string[]): string {
  return parts.filter(Boolean).join(" ");
}

/** The four corners' lines (empty lines are dropped). */
export function overlayText(instance: DicomJsonDataset | undefined, view: ViewState, t: Translator): OverlayText {
  const patientLine = joined(
    getString(instance, Tag.PatientID),
    [sexLabel(getString(instance, Tag.PatientSex), t), formatAge(getString(instance, Tag.PatientAge))]
      .filter(Boolean)
      .join("/"),
  );
  const birth = getString(instance, Tag.PatientBirthDate);
  const topLeft = [getPersonName(instance, Tag.PatientName), patientLine, birth ? formatDate(birth) : ""];

  const studyDate = getString(instance, Tag.StudyDate);
  const studyTime = getString(instance, Tag.StudyTime);
  const topRight = [
    getString(instance, Tag.InstitutionName),
    getString(instance, Tag.StudyDescription),
    joined(studyDate ? formatDate(studyDate) : "", studyTime ? formatTime(studyTime) : ""),
    getString(instance, Tag.AccessionNumber),
  ];

  const seriesNumber = getString(instance, Tag.SeriesNumber);
  const thickness = getNumber(instance, Tag.SliceThickness);
  const location = getNumber(instance, Tag.SliceLocation);
  const bottomLeft = [
    joined(
      getString(instance, Tag.Modality),
      seriesNumber ? t("overlay.series", { number: seriesNumber }) : "",
      getString(instance, Tag.SeriesDescription),
    ),
    // A single multi-frame object (a cine loop) counts frames only; a stack counts images.
    view.frames > 1 && view.frames === view.imageCount
      ? ""
      : t("overlay.image", { index: view.imageIndex + 1, count: view.imageCount }),
    view.frames > 1 ? t("overlay.frame", { index: view.frame, count: view.frames }) : "",
    thickness !== null ? t("overlay.thickness", { value: round(thickness, 2) }) : "",
    location !== null ? t("overlay.location", { value: round(location, 2) }) : "",
  ];

  const lossy = getString(instance, Tag.LossyImageCompression) === "01";
  const bottomRight = [
    view.fps ? `${view.fps} ${t("cine.fpsUnit")}` : "",
    t("overlay.zoom", { zoom: `${round(view.zoom * 100, 0)}%` }),
    view.window
      ? t("overlay.window", {
          width: formatWindowValue(view.window.width),
          center: formatWindowValue(view.window.center),
        })
      : "",
    lossy ? t("overlay.lossy") : "",
  ];

  const clean = (lines: string[]) => lines.filter((line) => line.trim() !== "");
  return {
    topLeft: clean(topLeft),
    topRight: clean(topRight),
    bottomLeft: clean(bottomLeft),
    bottomRight: clean(bottomRight),
  };
}

function round(value: number, digits: number): string {
  const factor = 10 ** digits;
  return String(Math.round(value * factor) / factor);
}
