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
  return firstPartWithType(contentType, body).body;
}

/**
 * The first part of a multipart/related answer: its Content-Type (the part's
 * own, e.g. with the frame's transfer syntax) and its body. An answer that is
 * not multipart is its own single part.
 */
export function firstPartWithType(contentType: string, body: Uint8Array): { contentType: string; body: Uint8Array } {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!contentType.toLowerCase().startsWith("multipart/") || !boundary) {
    return { contentType, body };
  }
  // Only the part's headers are decoded as text: a frame is megabytes of binary.
  const head = new TextDecoder("latin1").decode(body.subarray(0, Math.min(body.byteLength, 4096)));
  const start = head.indexOf(`--${boundary}`);
  const headersEnd = start === -1 ? -1 : head.indexOf("\r\n\r\n", start);
  if (headersEnd === -1) {
    return { contentType, body };
  }
  const partType = /^content-type:\s*(.+)$/im.exec(head.slice(start, headersEnd))?.[1]?.trim() ?? "application/octet-stream";
  const bodyStart = headersEnd + 4;
  const end = indexOf(body, new TextEncoder().encode(`\r\n--${boundary}`), bodyStart);
  return { contentType: partType, body: body.subarray(bodyStart, end === -1 ? body.byteLength : end) };
}

/** The first position of *needle* in *haystack* at or after *from*, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = haystack.byteLength - needle.byteLength;
  outer: for (let i = haystack.indexOf(first, from); i !== -1 && i <= last; i = haystack.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.byteLength; j++) {
      if (haystack[i + j] !== needle[j]) {
        continue outer;
      }
    }
    return i;
  }
  return -1;
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
