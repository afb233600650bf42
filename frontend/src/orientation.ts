// Orientation markers: which patient direction lies at each screen edge.

export type Vec3 = readonly [number, number, number];

const AXIS_LETTERS: readonly [string, string][] = [
  // DICOM's patient coordinate system (LPS): +x left, +y posterior, +z head.
  ["L", "R"],
  ["P", "A"],
  ["H", "F"],
];

/**
 * Letters for a direction in patient coordinates, most dominant axis first,
 * leaving out axes under ~0.3 of the vector (e.g. "L", "LP", "HLA" for obliques).
 */
export function directionLetters(vector: Vec3): string {
  const weights = vector.map((component, axis) => ({ axis, component, size: Math.abs(component) }));
  weights.sort((a, b) => b.size - a.size);
  const max = weights[0].size;
  if (max < 1e-6) {
    return "";
  }
  return weights
    .filter(({ size }) => size >= 0.3 * max)
    .map(({ axis, component }) => AXIS_LETTERS[axis][component > 0 ? 0 : 1])
    .join("");
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function negate(v: Vec3): Vec3 {
  return [-v[0], -v[1], -v[2]];
}

export interface Markers {
  top: string;
  bottom: string;
  left: string;
  right: string;
}

/**
 * Markers from the camera of a Cornerstone viewport: *viewUp* points to the
 * top of the screen, *viewPlaneNormal* towards the viewer, so screen right is
 * viewUp × viewPlaneNormal. Rotation and flips are already in the camera.
 */
export function markersFromCamera(viewUp: Vec3, viewPlaneNormal: Vec3, letters = directionLetters): Markers {
  const right = cross(viewUp, viewPlaneNormal);
  return {
    top: letters(viewUp),
    bottom: letters(negate(viewUp)),
    right: letters(right),
    left: letters(negate(right)),
  };
}

const OPPOSITE: Record<string, string> = { L: "R", R: "L", A: "P", P: "A", H: "F", F: "H" };

/**
 * For images without Image Orientation (Patient) — radiographs, dental and
 * ultrasound — Patient Orientation (0020,0020) names the directions of the
 * image's rows and columns (e.g. "A\F"). Cornerstone places such images with
 * rows along world +x and columns along world +y; this maps those world axes
 * to the letters the file gives, so `markersFromCamera` can use it.
 */
export function lettersFromPatientOrientation(rowDirection: string, columnDirection: string): (v: Vec3) => string {
  const opposite = (letters: string): string =>
    letters
      .split("")
      .map((letter) => OPPOSITE[letter] ?? "")
      .join("");
  return (vector: Vec3) => {
    const [x, y] = vector;
    if (Math.abs(x) < 1e-6 && Math.abs(y) < 1e-6) {
      return "";
    }
    if (Math.abs(x) >= Math.abs(y)) {
      return x > 0 ? rowDirection : opposite(rowDirection);
    }
    return y > 0 ? columnDirection : opposite(columnDirection);
  };
}
