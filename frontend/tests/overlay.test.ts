import { describe, expect, it } from "vitest";

import { formatAge, formatDate, formatPersonName, formatTime, sortInstances } from "../src/dicomJson";
import { translator } from "../src/i18n";
import { overlayText, type ViewState } from "../src/overlay";

const ct = {
  "00100010": { vr: "PN", Value: [{ Alphabetic: "HONG^GILDONG", Ideographic: "홍^길동" }] },
  "00100020": { vr: "LO", Value: ["CN-0001"] },
  "00100040": { vr: "CS", Value: ["M"] },
  "00101010": { vr: "AS", Value: ["056Y"] },
  "00100030": { vr: "DA", Value: ["19700102"] },
  "00080080": { vr: "LO", Value: ["밝은내과의원"] },
  "00081030": { vr: "LO", Value: ["Chest CT"] },
  "00080020": { vr: "DA", Value: ["20260301"] },
  "00080030": { vr: "TM", Value: ["093005.123"] },
  "00080050": { vr: "SH", Value: ["A-1"] },
  "00080060": { vr: "CS", Value: ["CT"] },
  "00200011": { vr: "IS", Value: [2] },
  "0008103E": { vr: "LO", Value: ["Axial 2.5"] },
  "00180050": { vr: "DS", Value: ["2.5"] },
  "00201041": { vr: "DS", Value: ["-12.456"] },
};

const view: ViewState = {
  imageIndex: 4,
  imageCount: 40,
  frame: 1,
  frames: 1,
  window: { center: 40, width: 400 },
  zoom: 1.5,
};

describe("overlay text", () => {
  it("fills the four corners in Korean", () => {
    const text = overlayText(ct, view, translator("ko"));
    expect(text.topLeft).toEqual(["홍길동 (HONG GILDONG)", "CN-0001 남/56Y", "1970-01-02"]);
    expect(text.topRight).toEqual(["밝은내과의원", "Chest CT", "2026-03-01 09:30:05", "A-1"]);
    expect(text.bottomLeft).toEqual(["CT 시리즈 2 Axial 2.5", "영상 5/40", "두께 2.5 mm", "위치 -12.46 mm"]);
    expect(text.bottomRight).toEqual(["배율 150%", "W 400 L 40"]);
  });

  it("speaks English when asked", () => {
    const text = overlayText(ct, view, translator("en"));
    expect(text.topLeft[1]).toBe("CN-0001 M/56Y");
    expect(text.bottomLeft[1]).toBe("Im 5/40");
    expect(text.bottomRight).toEqual(["Zoom 150%", "W 400 L 40"]);
  });

  it("shows the frame of a cine loop once, with the rate while playing", () => {
    const text = overlayText(
      { "00080060": { vr: "CS", Value: ["US"] } },
      { ...view, imageIndex: 9, imageCount: 30, frame: 10, frames: 30, window: null, fps: 30 },
      translator("en"),
    );
    expect(text.bottomLeft).toEqual(["US", "Fr 10/30"]);
    expect(text.bottomRight).toEqual(["30 fps", "Zoom 150%"]);
  });

  it("warns about lossy compression", () => {
    const text = overlayText({ "00282110": { vr: "CS", Value: ["01"] } }, view, translator("ko"));
    expect(text.bottomRight).toContain("손실 압축 영상");
  });

  it("leaves out what the file does not have", () => {
    const text = overlayText({}, view, translator("en"));
    expect(text.topLeft).toEqual([]);
    expect(text.topRight).toEqual([]);
    expect(text.bottomLeft).toEqual(["Im 5/40"]);
  });
});

describe("DICOM value formatting", () => {
  it("writes Korean names family name first without a space", () => {
    expect(formatPersonName({ Alphabetic: "홍^길동" })).toBe("홍길동");
    expect(formatPersonName({ Alphabetic: "HONG^GILDONG" })).toBe("HONG GILDONG");
    expect(formatPersonName("Doe^John")).toBe("Doe John");
    expect(formatPersonName(undefined)).toBe("");
    expect(formatPersonName({ Alphabetic: "^" })).toBe("");
  });

  it("puts the Hangul form first and the romanised one in brackets", () => {
    expect(formatPersonName({ Alphabetic: "Kim^Minji", Ideographic: "金^敏智", Phonetic: "김^민지" })).toBe(
      "김민지 (Kim Minji)",
    );
    expect(formatPersonName("Hong^Gildong=洪^吉童=홍^길동")).toBe("홍길동 (Hong Gildong)");
    expect(formatPersonName({ Alphabetic: "Kim^Minji", Ideographic: "金^敏智" })).toBe("金敏智 (Kim Minji)");
    expect(formatPersonName({ Alphabetic: "홍^길동", Ideographic: "洪^吉童" })).toBe("홍길동");
  });

  it("formats dates, times and ages", () => {
    expect(formatDate("20260301")).toBe("2026-03-01");
    expect(formatDate("2026")).toBe("2026");
    expect(formatTime("0930")).toBe("09:30");
    expect(formatTime("093005.5")).toBe("09:30:05");
    expect(formatAge("003M")).toBe("3M");
  });

  it("orders instances by number, then by position along the normal", () => {
    const at = (n: number | null, z: number, uid: string) => ({
      "00080018": { vr: "UI", Value: [uid] },
      ...(n === null ? {} : { "00200013": { vr: "IS", Value: [n] } }),
      "00200032": { vr: "DS", Value: [0, 0, z] },
      "00200037": { vr: "DS", Value: [1, 0, 0, 0, 1, 0] },
    });
    const sorted = sortInstances([at(3, 0, "c"), at(1, 5, "a"), at(null, 10, "e"), at(null, -10, "d"), at(2, 0, "b")]);
    expect(sorted.map((i) => i["00080018"]?.Value?.[0])).toEqual(["a", "b", "c", "d", "e"]);
  });
});
