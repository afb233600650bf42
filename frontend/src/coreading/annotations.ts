// Cornerstone annotations ↔ co-reading annotations. Cornerstone keeps handles in
// world coordinates with a tool-specific number and order of points; the
// protocol keeps image coordinates (columns, rows) and a few points per kind
// (docs/coreading.md, "Annotation"). Pure: the coordinate conversions are
// passed in, so Vitest can check the mapping both ways without a browser.

import type { AnnotationFields, AnnotationKind, Point } from "./protocol";

export type Point3 = [number, number, number];

/** Cornerstone's tool names (Tool.toolName), the ones ClinicNet's viewer offers. */
export const TOOL_FOR_KIND: Record<AnnotationKind, string> = {
  length: "Length",
  angle: "Angle",
  rectangle: "RectangleROI",
  ellipse: "EllipticalROI",
  arrow: "ArrowAnnotate",
};

export function kindForTool(toolName: string | undefined): AnnotationKind | null {
  for (const [kind, name] of Object.entries(TOOL_FOR_KIND) as [AnnotationKind, string][]) {
    if (name === toolName) {
      return kind;
    }
  }
  return null;
}

/** One image of a series, as the annotation refers to it. */
export interface ImageRef {
  /** The Cornerstone image id on this page (scheme and URL depend on the loader). */
  imageId: string;
  series: string;
  instance: string;
  /** 0-based frame (0 for single-frame instances). */
  frame: number;
}

/** World ↔ image coordinates of one image (Cornerstone's worldToImageCoords / imageToWorldCoords). */
export interface ImageSpace {
  toImage(world: Point3): Point;
  toWorld(image: Point): Point3;
  /** What Cornerstone files the annotation under: the image's frame of reference and plane. */
  plane?: { FrameOfReferenceUID?: string; viewPlaneNormal?: Point3; viewUp?: Point3 };
}

/** The parts of a Cornerstone annotation this module reads and writes. */
export interface CornerstoneAnnotation {
  annotationUID?: string;
  highlighted?: boolean;
  invalidated?: boolean;
  isLocked?: boolean;
  isVisible?: boolean;
  metadata?: {
    toolName: string;
    referencedImageId?: string;
    FrameOfReferenceUID?: string;
    viewPlaneNormal?: Point3;
    viewUp?: Point3;
    [key: string]: unknown;
  };
  data: {
    handles?: { points?: Point3[]; activeHandleIndex?: number | null; arrowFirst?: boolean; [key: string]: unknown };
    label?: string;
    text?: string;
    cachedStats?: Record<string, unknown>;
    [key: string]: unknown;
  };
}

function corners(points: Point[]): Point[] {
  const xs = points.map((point) => point[0]);
  const ys = points.map((point) => point[1]);
  return [
    [Math.min(...xs), Math.min(...ys)],
    [Math.max(...xs), Math.max(...ys)],
  ];
}

/** Cornerstone's handles (in image coordinates) → the protocol's points for *kind*. */
export function handlesToPoints(kind: AnnotationKind, handles: Point[], arrowFirst = true): Point[] {
  switch (kind) {
    case "length":
    case "angle":
      return handles.map((point) => [point[0], point[1]]);
    case "arrow": {
      // Cornerstone draws the head at points[0] when arrowFirst (its default); the protocol says [tail, head].
      const [first, second] = handles;
      return arrowFirst ? [second, first] : [first, second];
    }
    case "rectangle":
    case "ellipse":
      // Four handles (corners, or the ellipse's top/bottom/left/right) → the bounding box's two corners.
      return corners(handles);
  }
}

/** The protocol's points for *kind* → Cornerstone's handles, in image coordinates and Cornerstone's order. */
export function pointsToHandles(kind: AnnotationKind, points: Point[]): Point[] {
  switch (kind) {
    case "length":
    case "angle":
      return points.map((point) => [point[0], point[1]]);
    case "arrow": {
      const [tail, head] = points;
      return [head, tail]; // arrowFirst: the head is the first handle
    }
    case "rectangle": {
      const [[x0, y0], [x1, y1]] = corners(points);
      // RectangleROITool: 0 and 3 are opposite corners, 1 = (x of 3, y of 0), 2 = (x of 0, y of 3).
      return [
        [x0, y0],
        [x1, y0],
        [x0, y1],
        [x1, y1],
      ];
    }
    case "ellipse": {
      const [[x0, y0], [x1, y1]] = corners(points);
      const cx = (x0 + x1) / 2;
      const cy = (y0 + y1) / 2;
      // EllipticalROITool's order: bottom, top, left, right.
      return [
        [cx, y1],
        [cx, y0],
        [x0, cy],
        [x1, cy],
      ];
    }
  }
}

/** The label a kind carries: the arrow's text; the others' optional label. */
function labelOf(annotation: CornerstoneAnnotation): string {
  const { label, text } = annotation.data;
  return typeof label === "string" && label ? label : typeof text === "string" ? text : "";
}

/** A Cornerstone annotation → the fields of `annotation.create` (null: not a kind we share, or no handles). */
export function toFields(annotation: CornerstoneAnnotation, image: ImageRef, space: ImageSpace): AnnotationFields | null {
  const kind = kindForTool(annotation.metadata?.toolName);
  const handles = annotation.data.handles?.points;
  if (!kind || !handles || handles.length === 0) {
    return null;
  }
  const imagePoints = handles.map((world) => space.toImage(world));
  return {
    kind,
    series: image.series,
    instance: image.instance,
    frame: image.frame,
    points: handlesToPoints(kind, imagePoints, annotation.data.handles?.arrowFirst !== false),
    text: labelOf(annotation),
  };
}

function emptyTextBox() {
  const zero = (): Point3 => [0, 0, 0];
  return {
    hasMoved: false,
    worldPosition: zero(),
    worldBoundingBox: { topLeft: zero(), topRight: zero(), bottomLeft: zero(), bottomRight: zero() },
  };
}

/** Co-reading annotation fields → a new Cornerstone annotation, ready for `annotation.state.addAnnotation`. */
export function toCornerstone(
  uid: string,
  fields: Pick<AnnotationFields, "kind" | "points" | "text">,
  image: ImageRef,
  space: ImageSpace,
): CornerstoneAnnotation {
  const points = pointsToHandles(fields.kind, fields.points).map((point) => space.toWorld(point));
  const handles: NonNullable<CornerstoneAnnotation["data"]["handles"]> = {
    points,
    activeHandleIndex: null,
    textBox: emptyTextBox(),
  };
  if (fields.kind === "arrow") {
    handles.arrowFirst = true;
  }
  const metadata: NonNullable<CornerstoneAnnotation["metadata"]> = {
    toolName: TOOL_FOR_KIND[fields.kind],
    referencedImageId: image.imageId,
  };
  const plane = space.plane ?? {};
  if (plane.FrameOfReferenceUID) {
    metadata.FrameOfReferenceUID = plane.FrameOfReferenceUID;
  }
  if (plane.viewPlaneNormal) {
    metadata.viewPlaneNormal = plane.viewPlaneNormal;
  }
  if (plane.viewUp) {
    metadata.viewUp = plane.viewUp;
  }
  return {
    annotationUID: uid,
    highlighted: false,
    invalidated: true,
    isLocked: false,
    isVisible: true,
    metadata,
    data: { handles, cachedStats: {}, label: fields.text },
  };
}

/** Move an existing Cornerstone annotation to the server's points and text (in place: tools hold references). */
export function applyFields(
  annotation: CornerstoneAnnotation,
  fields: Pick<AnnotationFields, "kind" | "points" | "text">,
  space: ImageSpace,
): void {
  const points = pointsToHandles(fields.kind, fields.points).map((point) => space.toWorld(point));
  const handles = (annotation.data.handles ??= {});
  handles.points = points;
  if (fields.kind === "arrow") {
    handles.arrowFirst = true;
  }
  annotation.data.label = fields.text;
  annotation.data.cachedStats = {};
  annotation.invalidated = true;
}

/** Whether two point lists are the same to 1/1000 of a pixel (the wire's precision): no update to send. */
export function samePoints(a: Point[], b: Point[]): boolean {
  return a.length === b.length && a.every((point, index) => Math.abs(point[0] - b[index][0]) < 1e-3 && Math.abs(point[1] - b[index][1]) < 1e-3);
}
