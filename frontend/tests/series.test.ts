import { describe, expect, it } from "vitest";

import { isCineStack, nearestPending, seriesSummaries, stackImages, withMeasurementSpacing } from "../src/series";

const ref = { root: "/dicomweb", study: "1.2" };
const instance = (sop: string, number: number, frames?: number) => ({
  "00080018": { vr: "UI", Value: [sop] },
  "00200013": { vr: "IS", Value: [number] },
  "00280010": { vr: "US", Value: [64] },
  "00280011": { vr: "US", Value: [64] },
  ...(frames ? { "00280008": { vr: "IS", Value: [String(frames)] } } : {}),
  "7FE00010": { vr: "OW", BulkDataURI: "http://x/bulk" },
});

describe("series panel", () => {
  it("orders series by number and keeps their facts", () => {
    const summaries = seriesSummaries([
      { "0020000E": { vr: "UI", Value: ["b"] }, "00200011": { vr: "IS", Value: [3] } },
      { "0020000E": { vr: "UI", Value: ["c"] } },
      {
        "0020000E": { vr: "UI", Value: ["a"] },
        "00200011": { vr: "IS", Value: [1] },
        "00080060": { vr: "CS", Value: ["CT"] },
        "0008103E": { vr: "LO", Value: ["Axial"] },
        "00201209": { vr: "IS", Value: [40] },
      },
      { "00080060": { vr: "CS", Value: ["SR"] } },
    ]);
    expect(summaries.map((s) => s.uid)).toEqual(["a", "b", "c"]);
    expect(summaries[0]).toEqual({ uid: "a", modality: "CT", description: "Axial", number: 1, instanceCount: 40 });
  });
});

describe("stacks", () => {
  it("has one image per frame, instances in order, no pixel-less objects", () => {
    const sr = { "00080018": { vr: "UI", Value: ["sr"] } };
    const images = stackImages(ref, "s", [instance("i2", 2), sr, instance("i1", 1, 3)]);
    expect(images.map((i) => [i.sopInstanceUID, i.frame, i.frames])).toEqual([
      ["i1", 1, 3],
      ["i1", 2, 3],
      ["i1", 3, 3],
      ["i2", 1, 1],
    ]);
    expect(images[1].imageId).toBe("wadors:/dicomweb/studies/1.2/series/s/instances/i1/frames/2");
  });

  it("tells a cine loop from a stack of slices", () => {
    expect(isCineStack(stackImages(ref, "s", [instance("us", 1, 30)]))).toBe(true);
    expect(isCineStack(stackImages(ref, "s", [instance("a", 1), instance("b", 2)]))).toBe(false);
    expect(isCineStack(stackImages(ref, "s", [instance("a", 1)]))).toBe(false);
  });

  it("loads outwards from the image on screen", () => {
    const order = (count: number, center: number) => {
      const requested = new Uint8Array(count);
      const found: number[] = [];
      for (let index = nearestPending(requested, center); index >= 0; index = nearestPending(requested, center)) {
        requested[index] = 1;
        found.push(index);
      }
      return found;
    };
    expect(order(5, 0)).toEqual([0, 1, 2, 3, 4]);
    expect(order(5, 2)).toEqual([2, 3, 1, 4, 0]);
    expect(order(3, 9)).toEqual([2, 1, 0]);
    expect(order(0, 0)).toEqual([]);
  });

  it("follows the reader who scrolls away while loading", () => {
    const requested = [true, true, true, false, false, false, false, false, false, false];
    expect(nearestPending(requested, 1)).toBe(3);
    expect(nearestPending(requested, 8)).toBe(8);
    requested[8] = true;
    expect(nearestPending(requested, 8)).toBe(9);
    expect(nearestPending(requested.map(() => true), 4)).toBe(-1);
  });
});

describe("measurement spacing", () => {
  it("uses Pixel Spacing when the file has it", () => {
    const ds = { "00280030": { vr: "DS", Value: [0.5, 0.5] } };
    expect(withMeasurementSpacing(ds)).toEqual({ metadata: ds, spacing: "pixel" });
  });

  it("falls back to Imager Pixel Spacing for radiographs and dental images, and says so", () => {
    const ds = { "00181164": { vr: "DS", Value: [0.1, 0.1] } };
    const { metadata, spacing } = withMeasurementSpacing(ds);
    expect(spacing).toBe("imager");
    expect(metadata["00280030"]).toEqual({ vr: "DS", Value: [0.1, 0.1] });
    expect(ds).not.toHaveProperty("00280030");
  });

  it("says when there is no spacing at all", () => {
    expect(withMeasurementSpacing({}).spacing).toBe("none");
  });

  it("treats a spacing of zero as none, and leaves it out of the image's metadata", () => {
    const ds = { "00280030": { vr: "DS", Value: [0, 0] }, "00280010": { vr: "US", Value: [1955] } };
    const { metadata, spacing } = withMeasurementSpacing(ds);
    expect(spacing).toBe("none");
    expect(metadata).not.toHaveProperty("00280030");
    expect(metadata["00280010"]).toEqual({ vr: "US", Value: [1955] });
  });

  it("falls back to a usable Imager Pixel Spacing when Pixel Spacing is zero", () => {
    const ds = { "00280030": { vr: "DS", Value: [0, 0] }, "00181164": { vr: "DS", Value: ["0.15", "0.15"] } };
    const { metadata, spacing } = withMeasurementSpacing(ds);
    expect(spacing).toBe("imager");
    expect(metadata["00280030"]).toEqual({ vr: "DS", Value: [0.15, 0.15] });
  });
});
