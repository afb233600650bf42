// Reading values out of DICOM JSON (PS3.18 F.2): datasets keyed by 8-digit
// upper-case hex tags, each with a VR and a Value array (or bulk data).

export interface PersonNameValue {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}

export type DicomJsonDataset = Record<string, DicomJsonElement | undefined>;

/** Tags the viewer reads, by DICOM keyword. */
export const Tag = {
  SpecificCharacterSet: "00080005",
  ImageType: "00080008",
  SOPClassUID: "00080016",
  SOPInstanceUID: "00080018",
  StudyDate: "00080020",
  SeriesDate: "00080021",
  ContentDate: "00080023",
  StudyTime: "00080030",
  SeriesTime: "00080031",
  AccessionNumber: "00080050",
  Modality: "00080060",
  Manufacturer: "00080070",
  InstitutionName: "00080080",
  ReferringPhysicianName: "00080090",
  StudyDescription: "00081030",
  SeriesDescription: "0008103E",
  RecommendedDisplayFrameRate: "00082144",
  PatientName: "00100010",
  PatientID: "00100020",
  PatientBirthDate: "00100030",
  PatientSex: "00100040",
  PatientAge: "00101010",
  BodyPartExamined: "00180015",
  SliceThickness: "00180050",
  CineRate: "00180040",
  FrameTime: "00181063",
  ImagerPixelSpacing: "00181164",
  StudyInstanceUID: "0020000D",
  SeriesInstanceUID: "0020000E",
  SeriesNumber: "00200011",
  InstanceNumber: "00200013",
  PatientOrientation: "00200020",
  ImagePositionPatient: "00200032",
  ImageOrientationPatient: "00200037",
  SliceLocation: "00201041",
  NumberOfSeriesRelatedInstances: "00201209",
  SamplesPerPixel: "00280002",
  PhotometricInterpretation: "00280004",
  NumberOfFrames: "00280008",
  Rows: "00280010",
  Columns: "00280011",
  PixelSpacing: "00280030",
  BitsStored: "00280101",
  PixelRepresentation: "00280103",
  WindowCenter: "00281050",
  WindowWidth: "00281051",
  RescaleIntercept: "00281052",
  RescaleSlope: "00281053",
  RescaleType: "00281054",
  LossyImageCompression: "00282110",
  PixelData: "7FE00010",
  AvailableTransferSyntaxUID: "00083002",
} as const;

export function values(dataset: DicomJsonDataset | undefined, tag: string): unknown[] {
  return dataset?.[tag]?.Value ?? [];
}

/** The first value as text; person names give their alphabetic form. */
export function getString(dataset: DicomJsonDataset | undefined, tag: string, index = 0): string {
  const value = values(dataset, tag)[index];
  if (value === undefined || value === null) {
    return "";
  }
  if (typeof value === "object") {
    const pn = value as PersonNameValue;
    return pn.Alphabetic ?? pn.Ideographic ?? pn.Phonetic ?? "";
  }
  return String(value).trim();
}

/** The value at *index* as a number (DS and IS may arrive as strings), or null. */
export function getNumber(dataset: DicomJsonDataset | undefined, tag: string, index = 0): number | null {
  const value = values(dataset, tag)[index];
  if (value === undefined || value === null || value === "") {
    return null;
  }
  const number = typeof value === "number" ? value : Number.parseFloat(String(value));
  return Number.isFinite(number) ? number : null;
}

export function getNumbers(dataset: DicomJsonDataset | undefined, tag: string): number[] | null {
  const list = values(dataset, tag);
  if (list.length === 0) {
    return null;
  }
  const numbers = list.map((value) => (typeof value === "number" ? value : Number.parseFloat(String(value))));
  return numbers.every(Number.isFinite) ? numbers : null;
}

const CJK = /[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af]/;

function formatNameGroup(group: string): string {
  const [family = "", given = "", middle = "", prefix = "", suffix = ""] = group.split("^").map((part) => part.trim());
  if (CJK.test(family + given)) {
    // Korean (and Chinese/Japanese) names are written family name first, without a space.
    return `${family}${given}`;
  }
  return [prefix, family, given, middle, suffix].filter(Boolean).join(" ");
}

const HANGUL = /[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]/;

/**
 * A PN value for display. Korean files carry up to three forms
 * ("Hong^Gildong=洪^吉童=홍^길동", PS3.5 Annex I: alphabetic, ideographic,
 * phonetic): the Hangul form comes first wherever it is, the romanised one
 * follows in brackets — "홍길동 (Hong Gildong)".
 */
export function formatPersonName(value: unknown): string {
  if (value === undefined || value === null) {
    return "";
  }
  if (typeof value === "string") {
    // Some producers put the whole "Alphabetic=Ideographic=Phonetic" string in one value.
    const [Alphabetic, Ideographic, Phonetic] = value.split("=");
    return formatPersonName({ Alphabetic, Ideographic, Phonetic });
  }
  const pn = value as PersonNameValue;
  const forms = [pn.Alphabetic, pn.Ideographic, pn.Phonetic]
    .filter((form): form is string => !!form && form.replace(/\^/g, "").trim() !== "")
    .map(formatNameGroup);
  if (forms.length === 0) {
    return "";
  }
  const main = forms.find((form) => HANGUL.test(form)) ?? forms.find((form) => CJK.test(form)) ?? forms[0];
  const latin = forms.find((form) => !CJK.test(form));
  return latin && latin !== main ? `${main} (${latin})` : main;
}

export function getPersonName(dataset: DicomJsonDataset | undefined, tag: string): string {
  return formatPersonName(values(dataset, tag)[0]);
}

/** DA "20240131" → "2024-01-31"; anything else is shown as it is. */
export function formatDate(da: string): string {
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(da.trim());
  return match ? `${match[1]}-${match[2]}-${match[3]}` : da.trim();
}

/** TM "143015.123" → "14:30:15"; "1430" → "14:30". */
export function formatTime(tm: string): string {
  const match = /^(\d{2})(\d{2})?(\d{2})?/.exec(tm.trim());
  if (!match) {
    return tm.trim();
  }
  return [match[1], match[2], match[3]].filter((part) => part !== undefined).join(":");
}

/** AS "045Y" → "45Y"; "003M" → "3M". */
export function formatAge(as: string): string {
  const match = /^0*(\d+)([DWMY])$/.exec(as.trim());
  return match ? `${match[1]}${match[2]}` : as.trim();
}

/** Number of frames of an instance (1 for single-frame objects). */
export function frameCount(instance: DicomJsonDataset): number {
  const frames = getNumber(instance, Tag.NumberOfFrames);
  return frames !== null && frames > 1 ? Math.floor(frames) : 1;
}

/** Whether the instance has pixels the viewer can show (images, not SR/PR/KO). */
export function hasPixels(instance: DicomJsonDataset): boolean {
  return getNumber(instance, Tag.Rows) !== null && getNumber(instance, Tag.Columns) !== null;
}

/**
 * Instances in display order: by Instance Number, then by position along the
 * slice normal (for stacks whose numbering is missing or repeated), then UID.
 */
export function sortInstances(instances: DicomJsonDataset[]): DicomJsonDataset[] {
  const position = (instance: DicomJsonDataset): number | null => {
    const ipp = getNumbers(instance, Tag.ImagePositionPatient);
    const iop = getNumbers(instance, Tag.ImageOrientationPatient);
    if (!ipp || !iop || ipp.length < 3 || iop.length < 6) {
      return null;
    }
    const normal = [
      iop[1] * iop[5] - iop[2] * iop[4],
      iop[2] * iop[3] - iop[0] * iop[5],
      iop[0] * iop[4] - iop[1] * iop[3],
    ];
    return ipp[0] * normal[0] + ipp[1] * normal[1] + ipp[2] * normal[2];
  };
  return [...instances].sort((a, b) => {
    const na = getNumber(a, Tag.InstanceNumber);
    const nb = getNumber(b, Tag.InstanceNumber);
    if (na !== null && nb !== null && na !== nb) {
      return na - nb;
    }
    if (na !== null && nb === null) {
      return -1;
    }
    if (na === null && nb !== null) {
      return 1;
    }
    const pa = position(a);
    const pb = position(b);
    if (pa !== null && pb !== null && pa !== pb) {
      return pa - pb;
    }
    return getString(a, Tag.SOPInstanceUID).localeCompare(getString(b, Tag.SOPInstanceUID));
  });
}
