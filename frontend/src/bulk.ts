// Binary DICOM JSON values the image loader needs as numbers: palette colour
// lookup tables. DICOMweb servers send them inline (base64, InlineBinary) or
// by reference (BulkDataURI); Cornerstone's WADO-RS metadata reader only
// understands a Value array of numbers.

import type { DicomJsonDataset, DicomJsonElement } from "./dicomJson";

/** Red, green and blue LUT data, and their segmented forms. */
export const PALETTE_DATA_TAGS = ["00281201", "00281202", "00281203", "00281221", "00281222", "00281223"] as const;

/** OW is 16-bit little-endian words (DICOMweb always sends little endian). */
export function wordsFromBytes(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words: number[] = [];
  for (let offset = 0; offset + 1 < bytes.byteLength; offset += 2) {
    words.push(view.getUint16(offset, true));
  }
  return words;
}

export function bytesFromBase64(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

/**
 * The first part's body of a multipart/related answer (PS3.18 bulk data), or
 * the body itself when the answer is not multipart.
 */
export function firstPart(contentType: string, body: Uint8Array): Uint8Array {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!contentType.toLowerCase().startsWith("multipart/") || !boundary) {
    return body;
  }
  const text = new TextDecoder("latin1").decode(body);
  const start = text.indexOf(`--${boundary}`);
  const headersEnd = start === -1 ? -1 : text.indexOf("\r\n\r\n", start);
  if (headersEnd === -1) {
    return body;
  }
  const end = text.indexOf(`\r\n--${boundary}`, headersEnd + 4);
  return body.subarray(headersEnd + 4, end === -1 ? body.byteLength : end);
}

export type BulkFetcher = (uri: string) => Promise<Uint8Array>;

async function numbersFor(element: DicomJsonElement, fetchBulk: BulkFetcher): Promise<number[] | null> {
  if (element.InlineBinary !== undefined) {
    return wordsFromBytes(bytesFromBase64(element.InlineBinary));
  }
  if (element.BulkDataURI) {
    return wordsFromBytes(await fetchBulk(element.BulkDataURI));
  }
  return null;
}

/** A copy of *instance* with palette LUT data as numbers; instances without palettes come back as they are. */
export async function withPaletteValues(instance: DicomJsonDataset, fetchBulk: BulkFetcher): Promise<DicomJsonDataset> {
  let copy: DicomJsonDataset | null = null;
  for (const tag of PALETTE_DATA_TAGS) {
    const element = instance[tag];
    if (!element || element.Value?.length) {
      continue;
    }
    const numbers = await numbersFor(element, fetchBulk);
    if (numbers) {
      copy ??= { ...instance };
      copy[tag] = { vr: element.vr, Value: numbers };
    }
  }
  return copy ?? instance;
}
