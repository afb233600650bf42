import { describe, expect, it } from "vitest";

import { imageIdFor } from "../src/dicomweb";
import { parseImageId } from "../src/coreading/images";

const ref = { root: "/dicomweb", study: "1.2.3" };

describe("image ids → UIDs", () => {
  it("reads WADO-RS frame ids, frames 0-based", () => {
    expect(parseImageId(imageIdFor("wadors", ref, "4.5", "6.7", 1, 1))).toEqual({ series: "4.5", instance: "6.7", frame: 0 });
    expect(parseImageId(imageIdFor("wadors", ref, "4.5", "6.7", 10, 10))).toEqual({ series: "4.5", instance: "6.7", frame: 9 });
  });

  it("reads WADO-URI ids, single- and multi-frame", () => {
    expect(parseImageId(imageIdFor("wadouri", ref, "4.5", "6.7", 1, 1))).toEqual({ series: "4.5", instance: "6.7", frame: 0 });
    expect(parseImageId(imageIdFor("wadouri", ref, "4.5", "6.7", 3, 10))).toEqual({ series: "4.5", instance: "6.7", frame: 2 });
  });

  it("says null for ids it does not know", () => {
    expect(parseImageId("web:https://example.org/x.png")).toBeNull();
    expect(parseImageId("nonsense")).toBeNull();
  });
});
