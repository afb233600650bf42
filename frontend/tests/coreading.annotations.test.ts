import { describe, expect, it } from "vitest";

import { AnnotationBook } from "../src/coreading/annotationBook";
import {
  applyFields,
  handlesToPoints,
  kindForTool,
  pointsToHandles,
  toCornerstone,
  toFields,
  type ImageRef,
  type ImageSpace,
  type Point3,
} from "../src/coreading/annotations";
import type { AnnotationFields, AnnotationKind, Point, ServerAnnotation } from "../src/coreading/protocol";

const SERIES = "1.2.840.1";
const image: ImageRef = { imageId: "wadors:/dicomweb/studies/1/series/1.2.840.1/instances/1.2.840.1.41/frames/1", series: SERIES, instance: `${SERIES}.41`, frame: 0 };

/**
 * An axial CT slice at z = -120 mm, 0.7 mm pixels, origin (-180, -180): world =
 * origin + (x - 0.5) * 0.7 along +x, (y - 0.5) * 0.7 along +y, as Cornerstone's
 * imageToWorldCoords for this plane.
 */
const space: ImageSpace = {
  toWorld: ([x, y]) => [-180 + (x - 0.5) * 0.7, -180 + (y - 0.5) * 0.7, -120],
  toImage: ([wx, wy]) => [(wx + 180) / 0.7 + 0.5, (wy + 180) / 0.7 + 0.5],
  plane: { FrameOfReferenceUID: "1.2.3.4", viewPlaneNormal: [0, 0, 1], viewUp: [0, -1, 0] },
};

const near = (a: number[][], b: number[][]) => {
  expect(a.length).toBe(b.length);
  a.forEach((point, i) => point.forEach((value, j) => expect(value).toBeCloseTo(b[i][j], 6)));
};

const fieldsFor = (kind: AnnotationKind, points: Point[], text = ""): AnnotationFields => ({ kind, series: SERIES, instance: `${SERIES}.41`, frame: 0, points, text });

describe("annotation kinds", () => {
  it("map to the viewer's Cornerstone tools and back", () => {
    expect(kindForTool("Length")).toBe("length");
    expect(kindForTool("ArrowAnnotate")).toBe("arrow");
    expect(kindForTool("EllipticalROI")).toBe("ellipse");
    expect(kindForTool("RectangleROI")).toBe("rectangle");
    expect(kindForTool("Angle")).toBe("angle");
    expect(kindForTool("Probe")).toBeNull();
  });
});

describe("Cornerstone → protocol", () => {
  it("sends a length's two ends in image coordinates", () => {
    const world: Point3[] = [space.toWorld([120.5, 88]), space.toWorld([164, 97.25])];
    const fields = toFields({ metadata: { toolName: "Length" }, data: { handles: { points: world } } }, image, space);
    expect(fields?.kind).toBe("length");
    near(fields!.points, [[120.5, 88], [164, 97.25]]);
    expect(fields).toMatchObject({ series: SERIES, instance: `${SERIES}.41`, frame: 0, text: "" });
  });

  it("sends an arrow as [tail, head] with its text; Cornerstone keeps the head first", () => {
    const head = space.toWorld([100, 100]);
    const tail = space.toWorld([150, 60]);
    const fields = toFields(
      { metadata: { toolName: "ArrowAnnotate" }, data: { handles: { points: [head, tail], arrowFirst: true }, label: "결절 의심" } },
      image,
      space,
    );
    near(fields!.points, [[150, 60], [100, 100]]);
    expect(fields!.text).toBe("결절 의심");
  });

  it("sends rectangles and ellipses as two corners of their bounding box", () => {
    expect(handlesToPoints("rectangle", [[10, 20], [30, 20], [10, 40], [30, 40]])).toEqual([[10, 20], [30, 40]]);
    // Drawn from the lower right: still top-left, bottom-right.
    expect(handlesToPoints("rectangle", [[30, 40], [10, 40], [30, 20], [10, 20]])).toEqual([[10, 20], [30, 40]]);
    // Ellipse handles: bottom, top, left, right.
    expect(handlesToPoints("ellipse", [[20, 40], [20, 20], [10, 30], [30, 30]])).toEqual([[10, 20], [30, 40]]);
  });

  it("skips annotations of tools that are not shared", () => {
    expect(toFields({ metadata: { toolName: "Probe" }, data: { handles: { points: [[0, 0, 0]] } } }, image, space)).toBeNull();
  });
});

describe("protocol → Cornerstone", () => {
  it("builds an annotation Cornerstone can draw on the referenced image", () => {
    const annotation = toCornerstone("0d0f7c1e-aaaa-bbbb-cccc-000000000001", fieldsFor("length", [[120.5, 88], [164, 97.25]], "8 mm"), image, space);
    expect(annotation.annotationUID).toBe("0d0f7c1e-aaaa-bbbb-cccc-000000000001");
    expect(annotation.metadata).toMatchObject({ toolName: "Length", referencedImageId: image.imageId, FrameOfReferenceUID: "1.2.3.4" });
    expect(annotation).toMatchObject({ isVisible: true, invalidated: true, isLocked: false });
    expect(annotation.data.label).toBe("8 mm");
    near(annotation.data.handles!.points!, [space.toWorld([120.5, 88]), space.toWorld([164, 97.25])]);
  });

  it("lays out rectangle corners and ellipse extremes in Cornerstone's handle order", () => {
    expect(pointsToHandles("rectangle", [[10, 20], [30, 40]])).toEqual([[10, 20], [30, 20], [10, 40], [30, 40]]);
    expect(pointsToHandles("ellipse", [[10, 20], [30, 40]])).toEqual([[20, 40], [20, 20], [10, 30], [30, 30]]);
  });

  it("round-trips every kind: what one viewer sends, the other draws, and sends back the same", () => {
    const cases: [AnnotationKind, Point[]][] = [
      ["length", [[120.5, 88], [164, 97.25]]],
      ["arrow", [[150, 60], [100, 100]]],
      ["angle", [[10, 10], [50, 50], [90, 10]]],
      ["rectangle", [[40, 50], [80, 120]]],
      ["ellipse", [[40, 50], [80, 120]]],
    ];
    for (const [kind, points] of cases) {
      const sent = fieldsFor(kind, points, kind === "arrow" ? "여기" : "");
      const drawn = toCornerstone("uid", sent, image, space);
      const back = toFields(drawn, image, space);
      expect(back?.kind, kind).toBe(kind);
      near(back!.points, points);
      expect(back!.text).toBe(sent.text);
    }
  });

  it("moves an annotation in place when the server says it changed", () => {
    const annotation = toCornerstone("uid", fieldsFor("length", [[0, 0], [10, 0]]), image, space);
    const handles = annotation.data.handles;
    annotation.data.cachedStats = { "imageId:x": { length: 7 } };
    annotation.invalidated = false;
    applyFields(annotation, fieldsFor("length", [[5, 5], [20, 5]], "moved"), space);
    expect(annotation.data.handles).toBe(handles);
    near(annotation.data.handles!.points!, [space.toWorld([5, 5]), space.toWorld([20, 5])]);
    expect(annotation.data.label).toBe("moved");
    expect(annotation.invalidated).toBe(true);
    expect(annotation.data.cachedStats).toEqual({});
  });
});

// --- Bookkeeping ---------------------------------------------------------------------

function server(id: string, version: number, points: Point[], user = 3, text = ""): ServerAnnotation {
  return {
    ...fieldsFor("length", points, text),
    id,
    version,
    author: { user, name: user === 3 ? "김영상" : "이의사" },
    colour: user === 3 ? "#e6194b" : "#3cb44b",
    created_at: "",
    updated_at: "",
    updated_by: null,
  };
}

const ID_A = "0d0f7c1e-0000-4000-8000-00000000000a";
const ID_B = "0d0f7c1e-0000-4000-8000-00000000000b";

function book() {
  let n = 0;
  return new AnnotationBook(() => `t-${++n}`);
}

describe("annotation bookkeeping", () => {
  it("creates, then maps my drawing to the server's annotation when the echo comes", () => {
    const b = book();
    const actions = b.localCreated("local-1", fieldsFor("length", [[0, 0], [10, 0]]));
    expect(actions).toEqual([{ kind: "send", type: "annotation.create", id: "t-1", data: fieldsFor("length", [[0, 0], [10, 0]]) }]);
    expect(b.isPending("local-1")).toBe(true);
    const echo = b.remoteCreated(server(ID_A, 1, [[0, 0], [10, 0]]), "t-1");
    expect(echo).toEqual([{ kind: "confirm", uid: "local-1", annotation: server(ID_A, 1, [[0, 0], [10, 0]]) }]);
    expect(b.serverIdOf("local-1")).toBe(ID_A);
    expect(b.isPending("local-1")).toBe(false);
  });

  it("shows someone else's annotation under its server id, once however often it arrives", () => {
    const b = book();
    const theirs = server(ID_B, 1, [[1, 1], [2, 2]], 8);
    expect(b.remoteCreated(theirs, null)).toEqual([{ kind: "show", uid: ID_B, annotation: theirs }]);
    expect(b.remoteCreated(theirs, null)).toEqual([]);
  });

  it("sends one update at a time with the current version, and the latest edit after the echo", () => {
    const b = book();
    b.localCreated("local-1", fieldsFor("length", [[0, 0], [10, 0]]));
    b.remoteCreated(server(ID_A, 1, [[0, 0], [10, 0]]), "t-1");
    const first = b.localModified("local-1", fieldsFor("length", [[0, 0], [20, 0]]));
    expect(first).toEqual([
      { kind: "send", type: "annotation.update", id: "t-2", data: { annotation: ID_A, version: 1, points: [[0, 0], [20, 0]], text: "" } },
    ]);
    // More drags while the first update is on its way: held, only the latest kept.
    expect(b.localModified("local-1", fieldsFor("length", [[0, 0], [25, 0]]))).toEqual([]);
    expect(b.localModified("local-1", fieldsFor("length", [[0, 0], [30, 0]]))).toEqual([]);
    const echo = b.remoteUpdated(server(ID_A, 2, [[0, 0], [20, 0]]), "t-2");
    expect(echo).toEqual([
      { kind: "send", type: "annotation.update", id: "t-3", data: { annotation: ID_A, version: 2, points: [[0, 0], [30, 0]], text: "" } },
    ]);
  });

  it("sends nothing when an edit leaves the annotation as the server has it", () => {
    const b = book();
    b.localCreated("local-1", fieldsFor("length", [[0, 0], [10, 0]]));
    b.remoteCreated(server(ID_A, 1, [[0, 0], [10, 0]]), "t-1");
    expect(b.localModified("local-1", fieldsFor("length", [[0, 0], [10.0000001, 0]]))).toEqual([]);
  });

  it("sends edits and deletes made while the create was in flight once it is confirmed", () => {
    const b = book();
    b.localCreated("local-1", fieldsFor("length", [[0, 0], [10, 0]]));
    b.localModified("local-1", fieldsFor("length", [[0, 0], [12, 0]]));
    const moved = b.remoteCreated(server(ID_A, 1, [[0, 0], [10, 0]]), "t-1");
    expect(moved[1]).toMatchObject({ kind: "send", type: "annotation.update", data: { version: 1, points: [[0, 0], [12, 0]] } });

    b.localCreated("local-2", fieldsFor("length", [[5, 5], [6, 6]]));
    b.localRemoved("local-2");
    const gone = b.remoteCreated(server(ID_B, 1, [[5, 5], [6, 6]]), "t-3");
    expect(gone[1]).toMatchObject({ kind: "send", type: "annotation.delete", data: { annotation: ID_B } });
  });

  it("applies others' updates to the page copy, keeping the highest version", () => {
    const b = book();
    b.remoteCreated(server(ID_B, 1, [[1, 1], [2, 2]], 8), null);
    expect(b.remoteUpdated(server(ID_B, 3, [[1, 1], [4, 4]], 8), null)).toEqual([{ kind: "refresh", uid: ID_B, annotation: server(ID_B, 3, [[1, 1], [4, 4]], 8) }]);
    expect(b.remoteUpdated(server(ID_B, 2, [[1, 1], [3, 3]], 8), null)).toEqual([]);
    expect(b.record(ID_B)?.version).toBe(3);
  });

  it("lets the server's copy win a conflict", () => {
    const b = book();
    b.remoteCreated(server(ID_B, 1, [[1, 1], [2, 2]], 8), null);
    b.localModified(ID_B, fieldsFor("length", [[1, 1], [9, 9]]));
    const current = server(ID_B, 2, [[1, 1], [5, 5]], 8);
    expect(b.refused("t-1", "conflict", current)).toEqual([{ kind: "refresh", uid: ID_B, annotation: current }]);
    // The next edit goes out against the current version.
    expect(b.localModified(ID_B, fieldsFor("length", [[1, 1], [6, 6]]))[0]).toMatchObject({ data: { version: 2 } });
  });

  it("removes the page copy when the server deletes it or no longer knows it", () => {
    const b = book();
    b.remoteCreated(server(ID_B, 1, [[1, 1], [2, 2]], 8), null);
    expect(b.remoteDeleted(ID_B)).toEqual([{ kind: "remove", uid: ID_B }]);
    expect(b.remoteDeleted(ID_B)).toEqual([]);
    b.remoteCreated(server(ID_A, 1, [[1, 1], [2, 2]], 8), null);
    b.localModified(ID_A, fieldsFor("length", [[1, 1], [3, 3]]));
    expect(b.refused("t-1", "not_found", null)).toEqual([{ kind: "remove", uid: ID_A }]);
  });

  it("replaces everything with a snapshot: shows new ones, refreshes changed ones, removes deleted ones", () => {
    const b = book();
    b.remoteCreated(server(ID_A, 1, [[1, 1], [2, 2]], 8), null);
    b.remoteCreated(server(ID_B, 1, [[1, 1], [2, 2]], 8), null);
    const ID_C = "0d0f7c1e-0000-4000-8000-00000000000c";
    const actions = b.snapshot([server(ID_B, 2, [[3, 3], [4, 4]], 8), server(ID_C, 1, [[0, 0], [1, 1]], 8)]);
    expect(actions.map((action) => [action.kind, "uid" in action ? action.uid : ""])).toEqual([
      ["remove", ID_A],
      ["refresh", ID_B],
      ["show", ID_C],
    ]);
    expect(b.all().map((annotation) => annotation.id).sort()).toEqual([ID_B, ID_C]);
  });

  it("drops my page copy when a resent create turns out to be applied already (the snapshot has it)", () => {
    const b = book();
    b.localCreated("local-1", fieldsFor("length", [[0, 0], [10, 0]]));
    b.snapshot([server(ID_A, 1, [[0, 0], [10, 0]])]);
    expect(b.acknowledged("t-1")).toEqual([{ kind: "remove", uid: "local-1" }]);
    expect(b.isPending("local-1")).toBe(false);
  });
});
