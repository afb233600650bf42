import { describe, expect, it } from "vitest";

import {
  CT_PRESETS,
  fileWindow,
  formatWindowValue,
  presetsForModality,
  voiRangeFromWindow,
  windowForRange,
  windowFromVoiRange,
} from "../src/presets";

describe("presets per modality", () => {
  it("gives CT the standard windows", () => {
    const byId = Object.fromEntries(presetsForModality("CT").map((p) => [p.id, [p.width, p.center]]));
    expect(byId.brain).toEqual([80, 40]);
    expect(byId.lung).toEqual([1500, -600]);
    expect(byId.mediastinum).toEqual([350, 50]);
    expect(byId.abdomen).toEqual([400, 40]);
    expect(byId.bone).toEqual([1800, 400]);
  });

  it("puts the five everyday CT windows on keys 2–6", () => {
    expect(CT_PRESETS.slice(0, 5).map((p) => p.id)).toEqual(["brain", "lung", "mediastinum", "abdomen", "bone"]);
  });

  it("gives no fixed presets where pixel values have no absolute meaning", () => {
    for (const modality of ["MR", "CR", "DX", "US", "PX", "IO", "XA", ""]) {
      expect(presetsForModality(modality)).toEqual([]);
    }
    expect(presetsForModality(" ct ")).toBe(CT_PRESETS);
  });
});

describe("window math", () => {
  it("follows DICOM's LINEAR function as Cornerstone does", () => {
    expect(voiRangeFromWindow({ center: 40, width: 400 })).toEqual({ lower: -160, upper: 239 });
    expect(voiRangeFromWindow({ center: -600, width: 1500 })).toEqual({ lower: -1350, upper: 149 });
  });

  it("reads back the window it was given", () => {
    for (const preset of CT_PRESETS) {
      const back = windowFromVoiRange(voiRangeFromWindow(preset));
      expect(back).toEqual({ center: preset.center, width: preset.width });
    }
  });

  it("never makes a window narrower than 1", () => {
    const range = voiRangeFromWindow({ center: 10, width: 0 });
    expect(range.upper).toBeGreaterThanOrEqual(range.lower);
    expect(windowForRange(5, 5).width).toBe(1);
  });

  it("spans a pixel range for the full-range preset", () => {
    expect(windowForRange(-1024, 3071)).toEqual({ center: 1024, width: 4096 });
  });

  it("formats values as radiologists read them", () => {
    expect(formatWindowValue(399.6)).toBe("400");
    expect(formatWindowValue(-600)).toBe("-600");
    expect(formatWindowValue(2.345)).toBe("2.35");
    expect(formatWindowValue(-0.001)).toBe("0");
  });
});

describe("fileWindow", () => {
  it("takes the first of several windows, from numbers or strings", () => {
    expect(
      fileWindow({ "00281050": { vr: "DS", Value: ["40", "300"] }, "00281051": { vr: "DS", Value: [400, 1500] } }),
    ).toEqual({ center: 40, width: 400 });
  });

  it("is null when the file gives none or an invalid width", () => {
    expect(fileWindow({})).toBeNull();
    expect(fileWindow({ "00281050": { vr: "DS", Value: [40] }, "00281051": { vr: "DS", Value: [0] } })).toBeNull();
  });
});
