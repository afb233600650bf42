import { describe, expect, it } from "vitest";

import { directionLetters, lettersFromPatientOrientation, markersFromCamera } from "../src/orientation";

describe("orientation markers", () => {
  it("names LPS directions", () => {
    expect(directionLetters([1, 0, 0])).toBe("L");
    expect(directionLetters([-1, 0, 0])).toBe("R");
    expect(directionLetters([0, 1, 0])).toBe("P");
    expect(directionLetters([0, 0, 1])).toBe("H");
    expect(directionLetters([0.8, -0.5, 0.1])).toBe("LA");
    expect(directionLetters([0, 0, 0])).toBe("");
  });

  it("shows an axial slice in the radiological convention", () => {
    // Cornerstone's camera for IOP [1,0,0, 0,1,0]: up is -y (anterior), normal towards the viewer is -z.
    expect(markersFromCamera([0, -1, 0], [0, 0, -1])).toEqual({ top: "A", bottom: "P", left: "R", right: "L" });
  });

  it("follows a flip", () => {
    // Horizontal flip turns the camera around the up axis: the normal points the other way.
    expect(markersFromCamera([0, -1, 0], [0, 0, 1])).toEqual({ top: "A", bottom: "P", left: "L", right: "R" });
  });

  it("shows a coronal slice with the head up", () => {
    expect(markersFromCamera([0, 0, 1], [0, -1, 0])).toEqual({ top: "H", bottom: "F", left: "R", right: "L" });
  });

  it("uses Patient Orientation for projection images", () => {
    const letters = lettersFromPatientOrientation("L", "F");
    expect(markersFromCamera([0, -1, 0], [0, 0, -1], letters)).toEqual({ top: "H", bottom: "F", left: "R", right: "L" });
    // Rotated 90° clockwise: the patient's right comes to the top, the head to the right.
    expect(markersFromCamera([-1, 0, 0], [0, 0, -1], letters)).toEqual({ top: "R", bottom: "L", left: "F", right: "H" });
  });
});
