// The DICOMweb endpoints the viewer uses (PS3.18), all under one same-origin
// root, authenticated by the Django session cookie.

import { firstPart } from "./bulk";
import type { DicomJsonDataset } from "./dicomJson";

const enc = encodeURIComponent;

export interface StudyRef {
  root: string;
  study: string;
}

function base(ref: StudyRef): string {
  return `${ref.root.replace(/\/+$/, "")}/studies/${enc(ref.study)}`;
}

export function seriesListUrl(ref: StudyRef): string {
  return `${base(ref)}/series?includefield=all`;
}

export function studyMetadataUrl(ref: StudyRef): string {
  return `${base(ref)}/metadata`;
}

export function seriesMetadataUrl(ref: StudyRef, series: string): string {
  return `${base(ref)}/series/${enc(series)}/metadata`;
}

export function seriesThumbnailUrl(ref: StudyRef, series: string): string {
  return `${base(ref)}/series/${enc(series)}/thumbnail`;
}

export function instanceUrl(ref: StudyRef, series: string, sop: string): string {
  return `${base(ref)}/series/${enc(series)}/instances/${enc(sop)}`;
}

export function instanceThumbnailUrl(ref: StudyRef, series: string, sop: string): string {
  return `${instanceUrl(ref, series, sop)}/thumbnail`;
}

/** One frame, 1-based as in PS3.18. */
export function frameUrl(ref: StudyRef, series: string, sop: string, frame: number): string {
  if (!Number.isInteger(frame) || frame < 1) {
    throw new RangeError(`frame numbers start at 1, got ${frame}`);
  }
  return `${instanceUrl(ref, series, sop)}/frames/${frame}`;
}

/** WADO-URI (PS3.18 chapter 9): the whole Part 10 file. */
export function wadoUriUrl(ref: StudyRef, series: string, sop: string): string {
  const query = new URLSearchParams({
    requestType: "WADO",
    studyUID: ref.study,
    seriesUID: series,
    objectUID: sop,
    contentType: "application/dicom",
  });
  return `${ref.root.replace(/\/+$/, "")}/wado?${query.toString()}`;
}

export type ImageScheme = "wadors" | "wadouri";

/**
 * The Cornerstone image id of one frame. WADO-RS ids name the frame URL; the
 * WADO-URI fallback names the file and, for multi-frame objects, the frame
 * (0-based in Cornerstone's `frame=` parameter).
 */
export function imageIdFor(
  scheme: ImageScheme,
  ref: StudyRef,
  series: string,
  sop: string,
  frame: number,
  frames: number,
): string {
  if (scheme === "wadors") {
    return `wadors:${frameUrl(ref, series, sop, frame)}`;
  }
  const url = wadoUriUrl(ref, series, sop);
  return frames > 1 ? `wadouri:${url}&frame=${frame - 1}` : `wadouri:${url}`;
}

/** The value of the `csrftoken` cookie, for unsafe requests (POST, PUT, DELETE). */
export function csrfToken(cookie: string): string | null {
  for (const part of cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") {
      return decodeURIComponent(rest.join("="));
    }
  }
  return null;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
  ) {
    super(`HTTP ${status} for ${url}`);
    this.name = "HttpError";
  }
}

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** GET a DICOM JSON array; 204 No Content (an empty QIDO answer) gives []. */
export async function fetchDicomJson(url: string, fetchImpl: Fetch = fetch): Promise<DicomJsonDataset[]> {
  const response = await fetchImpl(url, {
    credentials: "same-origin",
    headers: { Accept: "application/dicom+json, application/json" },
  });
  if (response.status === 204) {
    return [];
  }
  if (!response.ok) {
    throw new HttpError(response.status, url);
  }
  if (response.redirected && !(response.headers.get("Content-Type") ?? "").includes("json")) {
    // An expired session is sent to the sign-in page; say so rather than fail to parse HTML.
    throw new HttpError(401, url);
  }
  const body: unknown = await response.json();
  if (!Array.isArray(body)) {
    throw new TypeError(`expected a DICOM JSON array from ${url}`);
  }
  return body as DicomJsonDataset[];
}

/** GET bulk data (PS3.18 8.4): the first part's bytes of the multipart answer. */
export async function fetchBulkData(url: string, fetchImpl: Fetch = fetch): Promise<Uint8Array> {
  const response = await fetchImpl(url, {
    credentials: "same-origin",
    headers: { Accept: 'multipart/related; type="application/octet-stream", application/octet-stream' },
  });
  if (!response.ok) {
    throw new HttpError(response.status, url);
  }
  const body = new Uint8Array(await response.arrayBuffer());
  return firstPart(response.headers.get("Content-Type") ?? "", body);
}
