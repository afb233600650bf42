import { describe, expect, it } from "vitest";

import { filterRows, formatTag, tagRows } from "../src/tags";

const names: Record<string, string> = {
  "00100010": "PatientName",
  "00081115": "ReferencedSeriesSequence",
  "0020000E": "SeriesInstanceUID",
  "7FE00010": "PixelData",
};
const dictionary = (tag: string) => names[tag];

describe("tag browser", () => {
  const dataset = {
    "7FE00010": { vr: "OW", BulkDataURI: "http://x/bulk" },
    "00100010": { vr: "PN", Value: [{ Alphabetic: "홍^길동" }] },
    "00081115": { vr: "SQ", Value: [{ "0020000E": { vr: "UI", Value: ["1.2.3"] } }] },
    "00091001": { vr: "LO", Value: ["vendor"] },
    "00280030": { vr: "DS", Value: [0.5, 0.5] },
  };

  it("lists elements in tag order with nested sequence items", () => {
    const rows = tagRows(dataset, dictionary, "(bulk)");
    expect(rows.map((r) => [r.tag, r.keyword, r.vr, r.value])).toEqual([
      ["(0008,1115)", "ReferencedSeriesSequence", "SQ", "1 item"],
      [">(0020,000E)", "SeriesInstanceUID", "UI", "1.2.3"],
      ["(0009,1001)", "Private", "LO", "vendor"],
      ["(0010,0010)", "PatientName", "PN", "홍길동"],
      ["(0028,0030)", "", "DS", "0.5\\0.5"],
      ["(7FE0,0010)", "PixelData", "OW", "(bulk)"],
    ]);
  });

  it("filters by tag, keyword or value", () => {
    const rows = tagRows(dataset, dictionary, "(bulk)");
    expect(filterRows(rows, "patient").map((r) => r.tag)).toEqual(["(0010,0010)"]);
    expect(filterRows(rows, "0010,0010").map((r) => r.tag)).toEqual(["(0010,0010)"]);
    expect(filterRows(rows, "00100010").map((r) => r.tag)).toEqual(["(0010,0010)"]);
    expect(filterRows(rows, "1.2.3").map((r) => r.tag)).toEqual([">(0020,000E)"]);
    expect(filterRows(rows, "  ")).toHaveLength(rows.length);
  });

  it("shortens long values", () => {
    const rows = tagRows({ "00281201": { vr: "US", Value: Array.from({ length: 256 }, (_, i) => i) } }, dictionary, "");
    expect(rows[0].value).toMatch(/… \(256\)$/);
  });

  it("formats tags", () => {
    expect(formatTag("0020000e")).toBe("(0020,000E)");
  });
});
