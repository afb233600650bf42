import { describe, expect, it } from "vitest";

import { translator } from "../src/i18n";
import { angleTextLines, lengthTextLines, roiTextLines, roundMeasurement } from "../src/measurements";

describe("measurement text", () => {
  it("gives ROI statistics in modality units", () => {
    const stats = { area: 312.456, areaUnit: "mm²", mean: 41.234, stdDev: 12.3, min: -20, max: 98.6, modalityUnit: "HU" };
    expect(roiTextLines(stats, translator("ko"))).toEqual([
      "면적 312 mm²",
      "평균 41.2 HU (표준편차 12.3)",
      "최소 -20 / 최대 98.6 HU",
    ]);
    expect(roiTextLines(stats, translator("en"))[1]).toBe("Mean 41.2 HU (SD 12.3)");
  });

  it("omits what Cornerstone could not compute", () => {
    expect(roiTextLines({ area: 5, isEmptyArea: true, mean: 1 }, translator("en"))).toEqual(["Mean 1"]);
    expect(roiTextLines(undefined, translator("en"))).toEqual([]);
  });

  it("gives lengths in mm and angles in degrees", () => {
    expect(lengthTextLines({ length: 23.456, unit: "mm" })).toEqual(["23.5 mm"]);
    expect(lengthTextLines({ length: 4.2, unit: "px" })).toEqual(["4.2 px"]);
    expect(angleTextLines({ angle: 89.96 })).toEqual(["90°"]);
    expect(lengthTextLines({})).toEqual([]);
  });

  it("rounds to what a reader can use", () => {
    expect(roundMeasurement(1.234)).toBe("1.23");
    expect(roundMeasurement(12.34)).toBe("12.3");
    expect(roundMeasurement(123.4)).toBe("123");
    expect(roundMeasurement(-0.001)).toBe("0");
  });
});
