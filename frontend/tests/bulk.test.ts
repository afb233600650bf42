import { describe, expect, it, vi } from "vitest";

import { bytesFromBase64, firstPart, firstPartWithType, withPaletteValues, wordsFromBytes } from "../src/bulk";

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

describe("the first part with its type", () => {
  const type = 'multipart/related; type="application/octet-stream"; boundary=b1';

  it("gives the part's own Content-Type and only the first part's bytes", () => {
    const body = new TextEncoder().encode(
      "--b1\r\nContent-Type: image/jls; transfer-syntax=1.2.840.10008.1.2.4.80\r\n\r\nAB\r\nCD\r\n--b1\r\n" +
        "Content-Type: image/jls\r\n\r\nEF\r\n--b1--\r\n",
    );
    const part = firstPartWithType(type, body);
    expect(part.contentType).toBe("image/jls; transfer-syntax=1.2.840.10008.1.2.4.80");
    expect(new TextDecoder().decode(part.body)).toBe("AB\r\nCD");
  });

  it("keeps binary bytes, including CR LF and bytes above 127", () => {
    const header = new TextEncoder().encode("--b1\r\nContent-Type: application/octet-stream\r\n\r\n");
    const pixels = new Uint8Array([0, 13, 10, 255, 128, 45, 45]);
    const tail = new TextEncoder().encode("\r\n--b1--\r\n");
    const body = new Uint8Array([...header, ...pixels, ...tail]);
    expect(Array.from(firstPartWithType(type, body).body)).toEqual(Array.from(pixels));
  });

  it("treats an answer that is not multipart as its own part", () => {
    const body = new Uint8Array([1, 2, 3]);
    expect(firstPartWithType("application/octet-stream", body)).toEqual({ contentType: "application/octet-stream", body });
  });
});
