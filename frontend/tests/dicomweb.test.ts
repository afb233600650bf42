import { describe, expect, it, vi } from "vitest";

import {
  csrfToken,
  fetchDicomJson,
  frameUrl,
  HttpError,
  imageIdFor,
  instanceThumbnailUrl,
  seriesListUrl,
  seriesMetadataUrl,
  seriesThumbnailUrl,
  studyMetadataUrl,
  wadoUriUrl,
} from "../src/dicomweb";

const ref = { root: "/dicomweb", study: "1.2.3" };

describe("DICOMweb URLs", () => {
  it("builds the QIDO-RS and WADO-RS paths", () => {
    expect(seriesListUrl(ref)).toBe("/dicomweb/studies/1.2.3/series?includefield=all");
    expect(studyMetadataUrl(ref)).toBe("/dicomweb/studies/1.2.3/metadata");
    expect(seriesMetadataUrl(ref, "4.5")).toBe("/dicomweb/studies/1.2.3/series/4.5/metadata");
    expect(seriesThumbnailUrl(ref, "4.5")).toBe("/dicomweb/studies/1.2.3/series/4.5/thumbnail");
    expect(instanceThumbnailUrl(ref, "4.5", "6.7")).toBe("/dicomweb/studies/1.2.3/series/4.5/instances/6.7/thumbnail");
    expect(frameUrl(ref, "4.5", "6.7", 3)).toBe("/dicomweb/studies/1.2.3/series/4.5/instances/6.7/frames/3");
  });

  it("tolerates a trailing slash on the root", () => {
    expect(seriesListUrl({ root: "/dicomweb/", study: "1.2" })).toBe("/dicomweb/studies/1.2/series?includefield=all");
  });

  it("numbers frames from 1", () => {
    expect(() => frameUrl(ref, "4.5", "6.7", 0)).toThrow(RangeError);
  });

  it("builds WADO-URI requests with every required parameter", () => {
    const url = new URL(wadoUriUrl(ref, "4.5", "6.7"), "http://x");
    expect(url.pathname).toBe("/dicomweb/wado");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      requestType: "WADO",
      studyUID: "1.2.3",
      seriesUID: "4.5",
      objectUID: "6.7",
      contentType: "application/dicom",
    });
  });

  it("makes Cornerstone image ids for both loaders", () => {
    expect(imageIdFor("wadors", ref, "4.5", "6.7", 2, 30)).toBe(
      "wadors:/dicomweb/studies/1.2.3/series/4.5/instances/6.7/frames/2",
    );
    expect(imageIdFor("wadouri", ref, "4.5", "6.7", 1, 1)).toMatch(/^wadouri:\/dicomweb\/wado\?.*objectUID=6.7/);
    // Cornerstone's WADO-URI frame parameter is 0-based.
    expect(imageIdFor("wadouri", ref, "4.5", "6.7", 2, 30)).toMatch(/&frame=1$/);
  });
});

describe("csrfToken", () => {
  it("reads the csrftoken cookie", () => {
    expect(csrfToken("a=1; csrftoken=abc%3D; b=2")).toBe("abc=");
    expect(csrfToken("sessionid=x")).toBeNull();
  });
});

describe("fetchDicomJson", () => {
  it("sends the session cookie and asks for DICOM JSON", async () => {
    const fetchImpl = vi.fn(async () => new Response("[]", { status: 200 }));
    await fetchDicomJson("/dicomweb/x", fetchImpl);
    expect(fetchImpl).toHaveBeenCalledWith("/dicomweb/x", {
      credentials: "same-origin",
      headers: { Accept: "application/dicom+json, application/json" },
    });
  });

  it("treats 204 No Content as an empty answer", async () => {
    await expect(fetchDicomJson("/x", async () => new Response(null, { status: 204 }))).resolves.toEqual([]);
  });

  it("reports an expired session (redirect to the sign-in page) as 401", async () => {
    const page = new Response("<html>", { status: 200, headers: { "Content-Type": "text/html" } });
    Object.defineProperty(page, "redirected", { value: true });
    await expect(fetchDicomJson("/x", async () => page)).rejects.toMatchObject({ status: 401 });
  });

  it("raises HttpError on 404 (unknown and forbidden look the same)", async () => {
    await expect(fetchDicomJson("/x", async () => new Response("", { status: 404 }))).rejects.toBeInstanceOf(HttpError);
  });
});
