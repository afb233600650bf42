import { describe, expect, it, vi } from "vitest";

import { bytesFromBase64, firstPart, withPaletteValues, wordsFromBytes } from "../src/bulk";

describe("palette LUT data", () => {
  it("reads OW as little-endian 16-bit words", () => {
    expect(wordsFromBytes(new Uint8Array([0x01, 0x00, 0xff, 0xff, 0x00, 0x01]))).toEqual([1, 65535, 256]);
  });

  it("decodes InlineBinary", async () => {
    const base64 = btoa(String.fromCharCode(0x00, 0x10, 0x00, 0x20));
    expect(Array.from(bytesFromBase64(base64))).toEqual([0x00, 0x10, 0x00, 0x20]);
    const instance = { "00281201": { vr: "OW", InlineBinary: base64 }, "00280004": { vr: "CS", Value: ["PALETTE COLOR"] } };
    const result = await withPaletteValues(instance, vi.fn());
    expect(result["00281201"]).toEqual({ vr: "OW", Value: [0x1000, 0x2000] });
    expect(instance["00281201"]).toHaveProperty("InlineBinary");
  });

  it("fetches BulkDataURI and leaves instances without palettes alone", async () => {
    const fetchBulk = vi.fn(async () => new Uint8Array([2, 0, 3, 0]));
    const result = await withPaletteValues({ "00281202": { vr: "OW", BulkDataURI: "/bulk/g" } }, fetchBulk);
    expect(fetchBulk).toHaveBeenCalledWith("/bulk/g");
    expect(result["00281202"]?.Value).toEqual([2, 3]);
    const plain = { "00280004": { vr: "CS", Value: ["MONOCHROME2"] } };
    expect(await withPaletteValues(plain, fetchBulk)).toBe(plain);
  });

  it("takes the first part of a multipart answer", () => {
    const body = new TextEncoder().encode("--b1\r\nContent-Type: application/octet-stream\r\n\r\nABCD\r\n--b1--\r\n");
    expect(new TextDecoder().decode(firstPart('multipart/related; type="application/octet-stream"; boundary=b1', body))).toBe(
      "ABCD",
    );
    expect(firstPart("application/octet-stream", body)).toBe(body);
  });
});
