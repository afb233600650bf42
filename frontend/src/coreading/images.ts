// Which DICOM image a Cornerstone image id names. The viewer builds its ids in
// frontend/src/dicomweb.ts (imageIdFor): WADO-RS frame URLs, or WADO-URI file
// URLs with a 0-based `frame=` for multi-frame objects. Co-reading messages
// name images by UIDs, which mean the same on every page whatever the loader.

export interface ParsedImageId {
  series: string;
  instance: string;
  /** 0-based frame. */
  frame: number;
}

const WADORS = /\/series\/([^/?#]+)\/instances\/([^/?#]+)\/frames\/(\d+)/;

export function parseImageId(imageId: string): ParsedImageId | null {
  const colon = imageId.indexOf(":");
  if (colon < 0) {
    return null;
  }
  const scheme = imageId.slice(0, colon);
  const rest = imageId.slice(colon + 1);
  if (scheme === "wadors") {
    const match = WADORS.exec(rest);
    if (!match) {
      return null;
    }
    const frame = Number(match[3]);
    return { series: decodeURIComponent(match[1]), instance: decodeURIComponent(match[2]), frame: Math.max(0, frame - 1) };
  }
  if (scheme === "wadouri") {
    const query = rest.indexOf("?");
    if (query < 0) {
      return null;
    }
    const params = new URLSearchParams(rest.slice(query + 1));
    const series = params.get("seriesUID");
    const instance = params.get("objectUID");
    if (!series || !instance) {
      return null;
    }
    const frame = Number(params.get("frame") ?? 0);
    return { series, instance, frame: Number.isInteger(frame) && frame > 0 ? frame : 0 };
  }
  return null;
}

/** A key for (instance, frame), to find an image id in a series. */
export function imageKey(instance: string, frame: number): string {
  return `${instance}#${frame}`;
}
