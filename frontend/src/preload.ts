// The first image's critical path, started by the small entry chunk before the
// large viewer chunk (Cornerstone, vtk.js) has even arrived: the series search,
// the first series' metadata and its first frame's bytes are fetched one after
// the other while the browser downloads, parses and initialises the rest.
// The viewer then takes these answers instead of asking again, and hands the
// frame's bytes to Cornerstone's image loader through its frame registry.

import { firstPartWithType } from "./bulk";
import type { DicomJsonDataset } from "./dicomJson";
import { fetchDicomJson, seriesListUrl, seriesMetadataUrl, type Fetch, type ImageScheme, type StudyRef } from "./dicomweb";
import { seriesSummaries, stackImages } from "./series";

/** What Cornerstone's WADO-RS loader asks for; the same answer must come back for our request. */
export const FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*";
/** The transfer syntax of a part without one: PS3.18's default for octet streams. */
const DEFAULT_SYNTAX = "1.2.840.10008.1.2";
/** Defaults of the compressed frame media types (PS3.18 Table 8.7.3-2). */
const SYNTAX_BY_TYPE: Record<string, string> = {
  "image/jpeg": "1.2.840.10008.1.2.4.50",
  "image/jls": "1.2.840.10008.1.2.4.80",
  "image/jp2": "1.2.840.10008.1.2.4.90",
  "image/jpx": "1.2.840.10008.1.2.4.92",
  "image/dicom-rle": "1.2.840.10008.1.2.5",
};

export interface FrameBytes {
  /** The frame's pixel data as sent: native little-endian samples or a compressed bitstream. */
  pixelData: Uint8Array;
  transferSyntaxUid: string;
}

/** The transfer syntax named by a frame part's Content-Type. */
export function transferSyntaxOf(contentType: string): string {
  const [mediaType, ...parameters] = contentType.split(";").map((part) => part.trim());
  for (const parameter of parameters) {
    const [name, value] = parameter.split("=");
    if (name?.trim().toLowerCase() === "transfer-syntax" && value) {
      return value.trim().replace(/"/g, "");
    }
  }
  return SYNTAX_BY_TYPE[mediaType.toLowerCase()] ?? DEFAULT_SYNTAX;
}

/** GET one frame (WADO-RS `/frames/N`) as Cornerstone would, and cut its bytes out of the multipart answer. */
export async function fetchFrame(url: string, fetchImpl: Fetch = fetch): Promise<FrameBytes> {
  const response = await fetchImpl(url, { credentials: "same-origin", headers: { Accept: FRAME_ACCEPT } });
  if (!response.ok) {
    throw new Error(`HTTP ${response.status} for ${url}`);
  }
  const part = firstPartWithType(response.headers.get("Content-Type") ?? "", new Uint8Array(await response.arrayBuffer()));
  return { pixelData: part.body, transferSyntaxUid: transferSyntaxOf(part.contentType) };
}

/**
 * Answers fetched ahead of the viewer. Each early answer is handed out once;
 * asking again (a series dropped again after a failure) goes to the network.
 * Every method is safe to call at any time: it waits for the early request it
 * can use, whatever the order in which the answers and the viewer arrive.
 */
export class EarlyLoad {
  private seriesAnswer: Promise<DicomJsonDataset[]> | null = null;
  private firstSeries: Promise<string | null> = Promise.resolve(null);
  private firstMetadata: Promise<DicomJsonDataset[]> | null = null;
  private firstFrame: Promise<{ imageId: string; bytes: FrameBytes | null } | null> | null = null;

  constructor(
    readonly ref: StudyRef,
    private readonly fetchImpl: Fetch = (input, init) => fetch(input, init),
  ) {}

  /** Start: series list → first series' metadata → its first frame (WADO-RS only). */
  start(scheme: ImageScheme = "wadors"): this {
    const series = fetchDicomJson(seriesListUrl(this.ref), this.fetchImpl);
    this.seriesAnswer = series;
    this.firstSeries = series.then(
      (qido) => seriesSummaries(qido)[0]?.uid ?? null,
      () => null,
    );
    const metadata = this.firstSeries.then((uid) =>
      uid ? fetchDicomJson(seriesMetadataUrl(this.ref, uid), this.fetchImpl) : [],
    );
    this.firstMetadata = metadata;
    if (scheme === "wadors") {
      this.firstFrame = Promise.all([this.firstSeries, metadata]).then(
        async ([uid, instances]) => {
          const image = uid ? stackImages(this.ref, uid, instances, scheme)[0] : undefined;
          if (!image) {
            return null;
          }
          // A frame that cannot be fetched here is fetched by Cornerstone, which reports the error.
          const bytes = await fetchFrame(image.imageId.replace(/^wadors:/, ""), this.fetchImpl).catch(() => null);
          return { imageId: image.imageId, bytes };
        },
        () => null,
      );
    }
    // Nobody may be waiting yet: a failure is reported when the viewer asks for the answer.
    series.catch(() => undefined);
    metadata.catch(() => undefined);
    return this;
  }

  /** The QIDO-RS series list: the early answer the first time. */
  seriesList(): Promise<DicomJsonDataset[]> {
    const early = this.seriesAnswer;
    this.seriesAnswer = null;
    return early ?? fetchDicomJson(seriesListUrl(this.ref), this.fetchImpl);
  }

  /** A series' metadata: the early answer the first time it is asked for the first series. */
  async seriesMetadata(uid: string): Promise<DicomJsonDataset[]> {
    const early = this.firstMetadata;
    if (early && (await this.firstSeries) === uid && this.firstMetadata === early) {
      this.firstMetadata = null;
      return early;
    }
    return fetchDicomJson(seriesMetadataUrl(this.ref, uid), this.fetchImpl);
  }

  /** The early bytes of *imageId*, once; null when it was not fetched early (or the fetch failed). */
  async frame(imageId: string): Promise<FrameBytes | null> {
    const early = this.firstFrame;
    if (!early) {
      return null;
    }
    const found = await early;
    if (found?.imageId !== imageId || this.firstFrame !== early) {
      return null;
    }
    this.firstFrame = null;
    return found.bytes;
  }
}
