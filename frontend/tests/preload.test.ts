import { describe, expect, it, vi } from "vitest";

import { EarlyLoad, fetchFrame, FRAME_ACCEPT, transferSyntaxOf } from "../src/preload";

const ref = { root: "/dicomweb", study: "1.2" };
const series = (uid: string, number: number) => ({
  "0020000E": { vr: "UI", Value: [uid] },
  "00200011": { vr: "IS", Value: [number] },
  "00080060": { vr: "CS", Value: ["CT"] },
});
const instance = (sop: string, number: number) => ({
  "00080018": { vr: "UI", Value: [sop] },
  "00200013": { vr: "IS", Value: [number] },
  "00280010": { vr: "US", Value: [2] },
  "00280011": { vr: "US", Value: [2] },
});
const FRAME_TYPE = 'multipart/related; type="application/octet-stream"; boundary=b';

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { headers: { "Content-Type": "application/dicom+json" } });
}

function frame(bytes: number[], partType = "application/octet-stream"): Response {
  const head = new TextEncoder().encode(`--b\r\nContent-Type: ${partType}\r\n\r\n`);
  const tail = new TextEncoder().encode("\r\n--b--\r\n");
  return new Response(new Uint8Array([...head, ...bytes, ...tail]), { headers: { "Content-Type": FRAME_TYPE } });
}

/** A server with two series (numbers 2 and 1) whose first series has instances 2 and 1. */
function server() {
  return vi.fn(async (url: string, _init?: RequestInit) => {
    if (url.endsWith("/series?includefield=all")) {
      return json([series("s2", 2), series("s1", 1)]);
    }
    if (url.endsWith("/series/s1/metadata")) {
      return json([instance("i2", 2), instance("i1", 1)]);
    }
    if (url.endsWith("/series/s2/metadata")) {
      return json([instance("j1", 1)]);
    }
    if (url.endsWith("/instances/i1/frames/1")) {
      return frame([1, 2, 3, 4]);
    }
    return new Response("", { status: 404 });
  });
}

describe("frames fetched ahead", () => {
  it("reads the transfer syntax of a frame part", () => {
    expect(transferSyntaxOf("application/octet-stream")).toBe("1.2.840.10008.1.2");
    expect(transferSyntaxOf("image/jls; transfer-syntax=1.2.840.10008.1.2.4.80")).toBe("1.2.840.10008.1.2.4.80");
    expect(transferSyntaxOf('application/octet-stream; transfer-syntax="1.2.840.10008.1.2.4.90"')).toBe(
      "1.2.840.10008.1.2.4.90",
    );
    expect(transferSyntaxOf("image/jp2")).toBe("1.2.840.10008.1.2.4.90");
  });

  it("asks for the frame as Cornerstone's loader does and keeps only its bytes", async () => {
    const fetchImpl = vi.fn(async () => frame([9, 8], "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"));
    const result = await fetchFrame("/f/1", fetchImpl);
    expect(fetchImpl).toHaveBeenCalledWith("/f/1", { credentials: "same-origin", headers: { Accept: FRAME_ACCEPT } });
    expect(Array.from(result.pixelData)).toEqual([9, 8]);
    expect(result.transferSyntaxUid).toBe("1.2.840.10008.1.2.4.80");
  });
});

describe("the early load", () => {
  it("fetches the series list, the first series' metadata and its first image's frame, in that order", async () => {
    const fetchImpl = server();
    const early = new EarlyLoad(ref, fetchImpl).start();
    const imageId = "wadors:/dicomweb/studies/1.2/series/s1/instances/i1/frames/1";
    const bytes = await early.frame(imageId);
    expect(Array.from(bytes?.pixelData ?? [])).toEqual([1, 2, 3, 4]);
    expect(bytes?.transferSyntaxUid).toBe("1.2.840.10008.1.2");
    expect(fetchImpl.mock.calls.map(([url]) => url)).toEqual([
      "/dicomweb/studies/1.2/series?includefield=all",
      "/dicomweb/studies/1.2/series/s1/metadata",
      "/dicomweb/studies/1.2/series/s1/instances/i1/frames/1",
    ]);
  });

  it("hands each early answer out once, then asks the server again", async () => {
    const fetchImpl = server();
    const early = new EarlyLoad(ref, fetchImpl).start();
    expect(await early.seriesList()).toHaveLength(2);
    expect(await early.seriesMetadata("s1")).toHaveLength(2);
    const imageId = "wadors:/dicomweb/studies/1.2/series/s1/instances/i1/frames/1";
    expect(await early.frame(imageId)).not.toBeNull();
    expect(fetchImpl).toHaveBeenCalledTimes(3);
    expect(await early.frame(imageId)).toBeNull();
    await early.seriesList();
    await early.seriesMetadata("s1");
    expect(fetchImpl).toHaveBeenCalledTimes(5);
  });

  it("fetches other series' metadata on demand and has no frame of theirs", async () => {
    const fetchImpl = server();
    const early = new EarlyLoad(ref, fetchImpl).start();
    expect(await early.seriesMetadata("s2")).toHaveLength(1);
    expect(await early.frame("wadors:/dicomweb/studies/1.2/series/s2/instances/j1/frames/1")).toBeNull();
    expect(fetchImpl.mock.calls.map(([url]) => url)).toContain("/dicomweb/studies/1.2/series/s2/metadata");
  });

  it("reports a failed series search to whoever asks, and fetches no frame", async () => {
    const fetchImpl = vi.fn(async () => new Response("", { status: 401 }));
    const early = new EarlyLoad(ref, fetchImpl).start();
    await expect(early.seriesList()).rejects.toMatchObject({ status: 401 });
    expect(await early.frame("wadors:/x/frames/1")).toBeNull();
    expect(fetchImpl).toHaveBeenCalledTimes(1);
  });

  it("leaves a frame that could not be fetched to Cornerstone", async () => {
    const fetchImpl = vi.fn(async (url: string) =>
      url.includes("/frames/") ? new Response("", { status: 500 }) : server()(url),
    );
    const early = new EarlyLoad(ref, fetchImpl).start();
    expect(await early.frame("wadors:/dicomweb/studies/1.2/series/s1/instances/i1/frames/1")).toBeNull();
  });

  it("fetches no frame for WADO-URI, which loads whole files", async () => {
    const fetchImpl = server();
    const early = new EarlyLoad(ref, fetchImpl).start("wadouri");
    await early.seriesMetadata("s1");
    expect(fetchImpl.mock.calls.every(([url]) => !url.includes("/frames/"))).toBe(true);
  });
});
