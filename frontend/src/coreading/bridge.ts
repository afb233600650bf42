// The co-reading client ↔ the viewer and Cornerstone: the leader's view goes
// out as it changes, a follower's view copies it, Cornerstone's annotation
// events become protocol messages and the room's annotations are drawn in
// their authors' colours. The viewer is driven only through its co-reading
// hooks (ViewHost) and Cornerstone's public API.

import { Enums, eventTarget, metaData, utilities, type StackViewport } from "@cornerstonejs/core";
import { annotation as csAnnotation, Enums as ToolEnums, ToolGroupManager } from "@cornerstonejs/tools";

import type { Action } from "../keyboard";
import type { LayoutState } from "../layout";
import { voiRangeFromWindow, windowFromVoiRange } from "../presets";
import { TOOL_GROUP_ID } from "../viewer/cornerstone";
import type { BookAction } from "./annotationBook";
import { applyFields, kindForTool, toCornerstone, toFields, TOOL_FOR_KIND, type CornerstoneAnnotation, type ImageRef, type ImageSpace, type Point3 } from "./annotations";
import type { CoreadingClient } from "./client";
import { imageKey, parseImageId } from "./images";
import type { Point, ServerAnnotation, Viewport, ViewportCell } from "./protocol";
import { Coalescer, intervalForRate } from "./throttle";
import { panToImage, panToScreen, sameCell, sameViewport, viewportFromCells } from "./viewState";

/** What the viewer offers co-reading (the hooks at the end of viewer/app.ts). */
export interface ViewHost {
  readonly layoutState: LayoutState;
  readyViewport(index: number): StackViewport | undefined;
  showSeriesInCell(index: number, uid: string): void;
  activateCell(index: number): void;
  run(action: Action): void;
}

/** A local change within this long after the user's own mouse or key input is theirs, not the leader's. */
const INPUT_WINDOW_MS = 1000;
const VIEWPORT_HZ = 10;
/** How long a follower keeps trying to reach the leader's view while series load. */
const APPLY_PATIENCE_MS = 30_000;
const AUTHOR_KEY = "clinicnetAuthor";

/** Screen (CSS) pixels per image pixel in *viewport* at its current zoom. */
function screenPerImagePixel(viewport: StackViewport): number {
  const camera = viewport.getCamera();
  const imageData = viewport.getImageData();
  const height = viewport.canvas.clientHeight;
  if (!camera.parallelScale || !imageData || !height) {
    return 0;
  }
  return (height / (2 * camera.parallelScale)) * (imageData.spacing[1] || 1);
}

export function cellOf(viewport: StackViewport, series: string): ViewportCell {
  const { voiRange, invert } = viewport.getProperties();
  const presentation = viewport.getViewPresentation({ rotation: true, flipHorizontal: true, flipVertical: true });
  return {
    series,
    image: viewport.getCurrentImageIdIndex(),
    window: voiRange ? windowFromVoiRange(voiRange) : null,
    zoom: viewport.getZoom(),
    pan: panToImage(viewport.getPan() as [number, number], screenPerImagePixel(viewport)),
    rotation: presentation.rotation ?? 0,
    flip: { h: !!presentation.flipHorizontal, v: !!presentation.flipVertical },
    invert: !!invert,
  };
}

/** The image ids of a series on this page, by (instance, frame), once a viewport has loaded it. */
function imageIdsOf(viewport: StackViewport): Map<string, string> {
  const map = new Map<string, string>();
  for (const imageId of viewport.getImageIds()) {
    const parsed = parseImageId(imageId);
    if (parsed) {
      map.set(imageKey(parsed.instance, parsed.frame), imageId);
    }
  }
  return map;
}

/** World ↔ image coordinates of one image, from the metadata the viewer registered for it. */
export function spaceOf(imageId: string): ImageSpace | null {
  const plane = metaData.get("imagePlaneModule", imageId) as
    | { frameOfReferenceUID?: string; rowCosines?: number[]; columnCosines?: number[]; imagePositionPatient?: number[] }
    | undefined;
  if (!plane?.imagePositionPatient || !plane.rowCosines || !plane.columnCosines) {
    return null;
  }
  const [r0, r1, r2] = plane.rowCosines;
  const [c0, c1, c2] = plane.columnCosines;
  const normal: Point3 = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
  return {
    toImage: (world) => utilities.worldToImageCoords(imageId, world) as Point,
    toWorld: (image) => utilities.imageToWorldCoords(imageId, image) as Point3,
    plane: { FrameOfReferenceUID: plane.frameOfReferenceUID, viewPlaneNormal: normal, viewUp: [-c0, -c1, -c2] },
  };
}

export class ViewerBridge {
  private lastInput = Number.NEGATIVE_INFINITY;
  private applying = false;
  private lastSent: Viewport | null = null;
  private wasLeading = false;
  private target: { viewport: Viewport; since: number } | null = null;
  private retryTimer: number | null = null;
  private readonly viewportOut: Coalescer<null>;
  /** Annotations waiting for their series to be shown on this page. */
  private readonly waiting = new Map<string, ServerAnnotation>();
  /** Cornerstone's events for annotations this page is adding or removing itself. */
  private quiet = false;
  private readonly modifyTimers = new Map<string, number>();

  constructor(
    private readonly host: ViewHost,
    private readonly root: HTMLElement,
    private readonly grid: HTMLElement,
    private readonly client: CoreadingClient,
    /** Elements whose input is not the user's viewing (the co-reading panel). */
    private readonly ignoreInputFrom: () => HTMLElement | null,
  ) {
    this.viewportOut = new Coalescer<null>(intervalForRate(VIEWPORT_HZ), () => this.sendViewport());
  }

  start(): void {
    this.watchInput();
    this.watchView();
    this.watchAnnotations();
    this.labelAuthors();
    this.client.listen({
      viewport: (viewport) => this.follow(viewport),
      annotations: (actions) => this.onBook(actions),
      joined: () => {
        this.lastSent = null;
        this.viewChanged();
      },
      people: () => {
        const leading = this.client.leading;
        if (leading && !this.wasLeading) {
          // Just got the lead: the room needs my view even if it equals what I last sent as leader.
          this.lastSent = null;
          this.target = null;
        }
        this.wasLeading = leading;
        if (leading) {
          this.viewChanged();
        }
      },
    });
  }

  // --- The leader's view out ---------------------------------------------------------------

  private watchInput(): void {
    const mark = (event: Event) => {
      const panel = this.ignoreInputFrom();
      if (panel && event.target instanceof Node && panel.contains(event.target)) {
        return;
      }
      this.lastInput = performance.now();
    };
    this.root.addEventListener("pointerdown", mark, { capture: true });
    this.root.addEventListener("wheel", mark, { capture: true, passive: true });
    document.addEventListener(
      "keydown",
      (event) => {
        const target = event.target as HTMLElement | null;
        const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || !!target?.isContentEditable;
        // Shift alone points with the laser; modifiers alone change nothing on screen.
        const modifierOnly = ["Shift", "Control", "Alt", "Meta"].includes(event.key);
        if (!typing && !modifierOnly) {
          mark(event);
        }
      },
      { capture: true },
    );
  }

  private watchView(): void {
    const changed = () => this.viewChanged();
    // Cornerstone's viewport events do not bubble; the capture phase still passes the grid.
    for (const name of [Enums.Events.CAMERA_MODIFIED, Enums.Events.VOI_MODIFIED, Enums.Events.STACK_NEW_IMAGE]) {
      this.grid.addEventListener(name, changed, { capture: true });
    }
    // A series that finished loading: waiting annotations and a waiting leader view can go on now.
    this.grid.addEventListener(Enums.Events.IMAGE_RENDERED, () => this.onRendered(), { capture: true });
    // Layout (cells added or removed), series (a cell's state) and active cell show in the grid's DOM.
    // Only the cells themselves count: measurements and overlay text change the DOM below them all the time.
    new MutationObserver((records) => {
      let view = false;
      let active = false;
      for (const record of records) {
        if (record.type === "childList" && record.target === this.grid) {
          view ||= [...record.addedNodes, ...record.removedNodes].some((node) => node instanceof HTMLElement && node.classList.contains("viewport-cell"));
        } else if (record.type === "attributes" && record.target instanceof HTMLElement && record.target.classList.contains("viewport-cell")) {
          if (record.attributeName === "data-state") {
            view = true;
          } else {
            active = true;
          }
        }
      }
      if (view || active) {
        this.viewChanged(view);
      }
    }).observe(this.grid, { childList: true, subtree: true, attributes: true, attributeFilter: ["class", "data-state"] });
  }

  /** *byView*: what is shown changed (not only which cell is active, which a follower may choose freely). */
  private viewChanged(byView = true): void {
    if (this.applying) {
      return;
    }
    if (this.client.leading) {
      this.viewportOut.push(null);
      return;
    }
    if (
      byView &&
      this.client.lead.mode === "follow" &&
      this.client.isLive &&
      performance.now() - this.lastInput < INPUT_WINDOW_MS &&
      // The leader's own change arriving just after a key press is not the user's doing.
      !sameViewport(this.captureViewport(), this.client.latestViewport)
    ) {
      // The user scrolled or changed the window by hand: they look on their own now.
      this.target = null;
      this.client.localChange();
    }
  }

  captureViewport(): Viewport | null {
    const layout = this.host.layoutState;
    const cells = layout.cells.map((series, index) => {
      const viewport = this.host.readyViewport(index);
      return series && viewport ? cellOf(viewport, series) : null;
    });
    return viewportFromCells(layout.layout, layout.active, cells);
  }

  private sendViewport(): void {
    if (!this.client.leading) {
      return;
    }
    const viewport = this.captureViewport();
    if (!viewport || sameViewport(viewport, this.lastSent)) {
      return;
    }
    if (this.client.sendViewport(viewport)) {
      this.lastSent = viewport;
    }
  }

  // --- A follower's view in ---------------------------------------------------------------------

  private follow(viewport: Viewport): void {
    this.target = { viewport, since: performance.now() };
    this.reconcile();
  }

  /** Bring the page as close to the target as loading allows; called again as series load. */
  private reconcile(): void {
    const target = this.target;
    if (!target || this.client.leading) {
      return;
    }
    this.applying = true;
    let done = true;
    try {
      const { viewport } = target;
      if (this.host.layoutState.layout !== viewport.layout) {
        this.host.run({ kind: "layout", layout: viewport.layout });
      }
      viewport.cells.forEach((cell, index) => {
        if (cell.series !== null && this.host.layoutState.cells[index] !== cell.series) {
          this.host.showSeriesInCell(index, cell.series);
        }
      });
      if (this.host.layoutState.active !== viewport.active) {
        this.host.activateCell(viewport.active);
      }
      viewport.cells.forEach((cell, index) => {
        if (cell.series === null) {
          return;
        }
        const ready = this.host.readyViewport(index);
        if (!ready || this.host.layoutState.cells[index] !== cell.series) {
          done = false;
          return;
        }
        if (!this.applyCell(ready, cell)) {
          done = false;
        }
      });
    } finally {
      // Cornerstone's events for these changes fire synchronously, except the new image's.
      this.applying = false;
    }
    if (done || performance.now() - target.since > APPLY_PATIENCE_MS) {
      this.target = null;
    } else if (this.retryTimer === null) {
      this.retryTimer = window.setTimeout(() => {
        this.retryTimer = null;
        this.reconcile();
      }, 250);
    }
  }

  /** Apply one cell; false while its image is still on its way. */
  private applyCell(viewport: StackViewport, cell: ViewportCell): boolean {
    const current = cellOf(viewport, cell.series ?? "");
    if (sameCell(current, cell)) {
      return true;
    }
    const count = viewport.getImageIds().length;
    const image = Math.min(count - 1, Math.max(0, cell.image));
    let settled = true;
    if (viewport.getCurrentImageIdIndex() !== image) {
      settled = false;
      void viewport.setImageIdIndex(image).then(() => this.reconcile());
    }
    const properties: { voiRange?: ReturnType<typeof voiRangeFromWindow>; invert?: boolean } = {};
    if (cell.window && (!current.window || Math.abs(current.window.center - cell.window.center) > 0.5 || Math.abs(current.window.width - cell.window.width) > 0.5)) {
      properties.voiRange = voiRangeFromWindow(cell.window);
    }
    if (current.invert !== cell.invert) {
      properties.invert = cell.invert;
    }
    if (Object.keys(properties).length > 0) {
      viewport.setProperties(properties);
    }
    if (Math.abs(current.rotation - cell.rotation) > 0.5 || current.flip.h !== cell.flip.h || current.flip.v !== cell.flip.v) {
      viewport.setViewPresentation({ rotation: cell.rotation, flipHorizontal: cell.flip.h, flipVertical: cell.flip.v });
    }
    if (Math.abs(viewport.getZoom() - cell.zoom) > 0.001) {
      viewport.setZoom(cell.zoom);
    }
    const pan = panToScreen(cell.pan, screenPerImagePixel(viewport));
    const [x, y] = viewport.getPan();
    if (Math.abs(x - pan[0]) > 0.5 || Math.abs(y - pan[1]) > 0.5) {
      viewport.setPan(pan as [number, number]);
    }
    viewport.render();
    return settled;
  }

  private onRendered(): void {
    if (this.target && this.retryTimer === null) {
      this.reconcile();
    }
    if (this.waiting.size > 0) {
      this.showWaiting();
    }
  }

  // --- Annotations ---------------------------------------------------------------------------------

  private watchAnnotations(): void {
    const detail = (event: Event) => (event as CustomEvent<{ annotation?: CornerstoneAnnotation; changeType?: string }>).detail ?? {};
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, (event: Event) => {
      const { annotation } = detail(event);
      if (!this.quiet && annotation?.annotationUID) {
        const fields = this.fieldsOf(annotation);
        if (fields) {
          this.style(annotation.annotationUID, this.client.you?.colour ?? null);
          this.client.annotationCreated(annotation.annotationUID, fields);
        }
      }
    });
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, (event: Event) => {
      const { annotation, changeType } = detail(event);
      if (this.quiet || !annotation?.annotationUID || changeType === ToolEnums.ChangeTypes.StatsUpdated) {
        return;
      }
      // A drag sends many of these: one update when it rests, and each waits for the previous echo anyway.
      const uid = annotation.annotationUID;
      window.clearTimeout(this.modifyTimers.get(uid));
      this.modifyTimers.set(
        uid,
        window.setTimeout(() => {
          this.modifyTimers.delete(uid);
          const fields = this.fieldsOf(annotation);
          if (fields && csAnnotation.state.getAnnotation(uid)) {
            this.client.annotationModified(uid, fields);
          }
        }, 150),
      );
    });
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_REMOVED, (event: Event) => {
      const { annotation } = detail(event);
      if (!this.quiet && annotation?.annotationUID) {
        window.clearTimeout(this.modifyTimers.get(annotation.annotationUID));
        this.client.annotationRemoved(annotation.annotationUID);
      }
    });
  }

  private fieldsOf(annotation: CornerstoneAnnotation) {
    const imageId = annotation.metadata?.referencedImageId;
    const parsed = imageId ? parseImageId(imageId) : null;
    const space = imageId ? spaceOf(imageId) : null;
    if (!imageId || !parsed || !space || !kindForTool(annotation.metadata?.toolName)) {
      return null;
    }
    return toFields(annotation, { imageId, ...parsed }, space);
  }

  /** Where a server annotation goes on this page: its image id, once its series is loaded in a viewport. */
  private imageFor(record: ServerAnnotation): ImageRef | null {
    const layout = this.host.layoutState;
    for (let index = 0; index < layout.cells.length; index++) {
      const viewport = this.host.readyViewport(index);
      if (!viewport || layout.cells[index] !== record.series) {
        continue;
      }
      const imageId = imageIdsOf(viewport).get(imageKey(record.instance, record.frame));
      if (imageId) {
        return { imageId, series: record.series, instance: record.instance, frame: record.frame };
      }
    }
    return null;
  }

  private onBook(actions: BookAction[]): void {
    let changed = false;
    for (const action of actions) {
      switch (action.kind) {
        case "show":
          this.waiting.set(action.uid, action.annotation);
          break;
        case "refresh": {
          const existing = csAnnotation.state.getAnnotation(action.uid) as CornerstoneAnnotation | undefined;
          if (!existing) {
            this.waiting.set(action.uid, action.annotation);
            break;
          }
          const imageId = existing.metadata?.referencedImageId;
          const space = imageId ? spaceOf(imageId) : null;
          if (space) {
            applyFields(existing, action.annotation, space);
            this.attribute(existing, action.annotation);
            this.style(action.uid, action.annotation.colour);
            changed = true;
          }
          break;
        }
        case "confirm": {
          const existing = csAnnotation.state.getAnnotation(action.uid) as CornerstoneAnnotation | undefined;
          if (existing) {
            this.style(action.uid, action.annotation.colour);
            changed = true;
          }
          break;
        }
        case "remove":
          this.waiting.delete(action.uid);
          if (csAnnotation.state.getAnnotation(action.uid)) {
            this.quietly(() => csAnnotation.state.removeAnnotation(action.uid));
            changed = true;
          }
          break;
        case "send":
          break;
      }
    }
    if (this.waiting.size > 0) {
      changed = this.showWaiting() || changed;
    }
    if (changed) {
      this.render();
    }
  }

  /** Draw the annotations whose series are now shown; the rest keep waiting. */
  private showWaiting(): boolean {
    let shown = false;
    for (const [uid, record] of [...this.waiting]) {
      const image = this.imageFor(record);
      const space = image ? spaceOf(image.imageId) : null;
      if (!image || !space) {
        continue;
      }
      this.waiting.delete(uid);
      if (csAnnotation.state.getAnnotation(uid)) {
        continue;
      }
      const annotation = toCornerstone(uid, record, image, space);
      this.attribute(annotation, record);
      this.quietly(() => csAnnotation.state.addAnnotation(annotation as never, annotation.metadata?.FrameOfReferenceUID as string));
      this.style(uid, record.colour);
      shown = true;
    }
    if (shown) {
      this.render();
    }
    return shown;
  }

  /** Others' annotations carry their author's name (shown under the measurement). */
  private attribute(annotation: CornerstoneAnnotation, record: ServerAnnotation): void {
    if (record.author.user !== this.client.you?.user) {
      annotation.data[AUTHOR_KEY] = record.author.name;
    } else {
      delete annotation.data[AUTHOR_KEY];
    }
  }

  private style(uid: string, colour: string | null): void {
    if (!colour) {
      return;
    }
    csAnnotation.config.style.setAnnotationStyles(uid, {
      color: colour,
      colorHighlighted: colour,
      colorSelected: colour,
      textBoxColor: colour,
      textBoxColorHighlighted: colour,
      textBoxColorSelected: colour,
    });
  }

  private quietly(run: () => void): void {
    this.quiet = true;
    try {
      run();
    } finally {
      this.quiet = false;
    }
  }

  /** Add the author's name to the text of measurements by others, keeping the viewer's own text lines. */
  private labelAuthors(): void {
    const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID);
    if (!group) {
      return;
    }
    for (const kind of ["length", "angle", "rectangle", "ellipse"] as const) {
      const tool = group.getToolInstance(TOOL_FOR_KIND[kind]);
      const configuration = tool?.configuration as { getTextLines?: (data: Record<string, unknown>, targetId: string) => string[] | undefined };
      const original = configuration?.getTextLines;
      if (!original) {
        continue;
      }
      configuration.getTextLines = (data, targetId) => {
        const lines = original(data, targetId) ?? [];
        const author = data[AUTHOR_KEY];
        return typeof author === "string" && author ? [...lines, author] : lines;
      };
    }
  }

  private render(): void {
    const engine = this.renderingEngine();
    engine?.render();
  }

  private renderingEngine() {
    // The viewer's one rendering engine (viewer/cornerstone.ts).
    const layout = this.host.layoutState;
    for (let index = 0; index < layout.cells.length; index++) {
      const viewport = this.host.readyViewport(index);
      if (viewport) {
        return viewport.getRenderingEngine();
      }
    }
    return undefined;
  }

  /** The series on screen and their viewports, for the pointer overlay. */
  visibleCells(): { index: number; series: string; viewport: StackViewport }[] {
    const layout = this.host.layoutState;
    const cells: { index: number; series: string; viewport: StackViewport }[] = [];
    layout.cells.forEach((series, index) => {
      const viewport = this.host.readyViewport(index);
      if (series && viewport) {
        cells.push({ index, series, viewport });
      }
    });
    return cells;
  }
}
