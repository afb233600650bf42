// The viewer: series panel, viewport grid, toolbar, overlays, cine, dialogs.
// State that has logic (layout, cine timing, presets, overlay text, keys) lives
// in the pure modules beside this folder, where Vitest covers it; this file
// wires them to Cornerstone and the DOM.

// vtk.js extends Node's EventEmitter; the `events` package provides it in the
// browser (without it the page dies with "Class extends value undefined").
import "events";

import {
  cache,
  Enums,
  imageLoader,
  type StackViewport,
  type Types,
} from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader/imageLoader";

import { advanceFrame, CineClock, defaultFrameRate, stepFps } from "../cine";
import { getString, Tag, type DicomJsonDataset } from "../dicomJson";
import { withPaletteValues } from "../bulk";
import { fetchBulkData, HttpError, seriesThumbnailUrl, type ImageScheme, type StudyRef } from "../dicomweb";
import type { MessageKey, Translator } from "../i18n";
import { actionForKey, type Action, type LayoutId, type ToolName, TOOL_LABELS } from "../keyboard";
import { assignSeries, initialLayout, LAYOUTS, nextActive, setActive, setLayout, type LayoutState } from "../layout";
import { lettersFromPatientOrientation, markersFromCamera, directionLetters, type Vec3 } from "../orientation";
import { overlayText } from "../overlay";
import {
  fileWindow,
  formatWindowValue,
  presetsForModality,
  voiRangeFromWindow,
  windowForRange,
  windowFromVoiRange,
  type Window,
  type WindowPreset,
} from "../presets";
import {
  isCineStack,
  nearestPending,
  seriesSummaries,
  stackImages,
  withMeasurementSpacing,
  type SeriesSummary,
  type StackImage,
} from "../series";
import {
  deleteSelectedAnnotations,
  initCornerstone,
  registerFrame,
  setPrimaryTool,
  RENDERING_ENGINE_ID,
  type CornerstoneSetup,
} from "./cornerstone";
import { askText, showHelp, showTags, closeDialog, isDialogOpen } from "./dialogs";
import { h, setLines } from "./dom";
import { EarlyLoad, fetchFrame } from "../preload";
import { markOnce, MARKS } from "../timing";

/** What the Django template passes in `#viewer-config` (see imaging/viewer.py). */
export interface ViewerConfig {
  studyInstanceUID: string;
  dicomwebRoot: string;
  language?: string;
  homeUrl?: string;
  /** "wadouri" loads whole files over WADO-URI from the start (troubleshooting: `?loader=wadouri`). */
  loader?: ImageScheme;
}

interface SeriesStack {
  uid: string;
  images: StackImage[];
  scheme: ImageScheme;
  spacing: "pixel" | "imager" | "none";
  loaded: number;
  failed: number;
  prefetching: boolean;
}

interface Cell {
  index: number;
  viewportId: string;
  root: HTMLDivElement;
  element: HTMLDivElement;
  corners: { topLeft: HTMLElement; topRight: HTMLElement; bottomLeft: HTMLElement; bottomRight: HTMLElement };
  markers: { top: HTMLElement; bottom: HTMLElement; left: HTMLElement; right: HTMLElement };
  notice: HTMLElement;
  message: HTMLElement;
  scrollbar: HTMLInputElement;
  progress: HTMLElement;
  progressBar: HTMLElement;
  seriesUid: string | null;
  cine: { clock: CineClock; playing: boolean; frame: number | null; pending: boolean };
  overlayQueued: boolean;
}

const SERIES_MIME = "application/x-clinicnet-series";
/** Background frame requests in flight per series (browsers open 6 connections per host over HTTP/1.1). */
const PREFETCH_REQUESTS = 6;
/** Background images fetched or decoding per series: bounds the memory of frames waiting for a decoder. */
const PREFETCH_PIPELINE = 16;
const TOOLBAR_TOOLS: readonly ToolName[] = [
  "windowLevel",
  "zoom",
  "pan",
  "scroll",
  "length",
  "angle",
  "rectangle",
  "ellipse",
  "arrow",
];

export class Viewer {
  private readonly ref: StudyRef;
  /** The series list, first metadata and first frame, fetched while this code was loading. */
  private readonly early: EarlyLoad;
  private cs!: CornerstoneSetup;
  private series: SeriesSummary[] = [];
  private readonly stacks = new Map<string, Promise<SeriesStack>>();
  private readonly loadedStacks = new Map<string, SeriesStack>();
  private layout: LayoutState = { layout: "1x1", cells: [null], active: 0 };
  private cells: Cell[] = [];
  private primaryTool: ToolName = "windowLevel";
  private nextViewportNumber = 0;

  // DOM
  private readonly toolbar: HTMLElement;
  private readonly seriesList: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly toolButtons = new Map<ToolName, HTMLButtonElement>();
  private readonly layoutButtons = new Map<LayoutId, HTMLButtonElement>();
  private readonly presetSelect: HTMLSelectElement;
  private readonly playButton: HTMLButtonElement;
  private readonly fpsInput: HTMLInputElement;
  private readonly seriesItems = new Map<string, { item: HTMLElement; status: HTMLElement }>();

  constructor(
    private readonly root: HTMLElement,
    private readonly config: ViewerConfig,
    private readonly t: Translator,
    early?: EarlyLoad,
  ) {
    this.ref = { root: config.dicomwebRoot, study: config.studyInstanceUID };
    this.early = early ?? new EarlyLoad(this.ref);
    this.presetSelect = h(
      "select",
      { className: "presets", "aria-label": t("wl.presets"), title: t("wl.presets") },
      h("option", { value: "", disabled: true, selected: true }, t("wl.presets")),
    );
    this.playButton = h("button", { type: "button", className: "tool", title: `${t("action.play")} (Space)` }, "▶");
    this.fpsInput = h("input", {
      type: "number",
      className: "fps",
      min: 1,
      max: 60,
      step: 1,
      value: 15,
      "aria-label": t("cine.fps"),
      title: t("cine.fps"),
    });
    this.toolbar = this.buildToolbar();
    this.seriesList = h("ol", { className: "series-list" });
    this.grid = h("section", { className: "viewport-grid", "aria-label": t("app.title") });
    const panel = h(
      "aside",
      { className: "series-panel", "aria-label": t("series.title") },
      h("h2", {}, t("series.title")),
      h("p", { className: "hint" }, t("series.dragHint")),
      this.seriesList,
    );
    root.replaceChildren(this.toolbar, h("div", { className: "viewer-body" }, panel, this.grid));
    root.dataset.state = "loading";
  }

  async start(): Promise<void> {
    this.cs = initCornerstone(this.t, (initial) => askText(this.t, initial));
    markOnce(MARKS.cornerstoneReady);
    this.bindGlobalEvents();
    let qido: DicomJsonDataset[];
    try {
      qido = await this.early.seriesList();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.series = seriesSummaries(qido);
    this.renderSeriesPanel();
    if (this.series.length === 0) {
      this.root.dataset.state = "empty";
      this.grid.replaceChildren(h("p", { className: "viewer-message" }, this.t("app.noSeries")));
      return;
    }
    this.applyLayout(initialLayout(this.uids(), "1x1"));
    this.selectTool("windowLevel");
    this.root.dataset.state = "ready";
    this.root.removeAttribute("aria-busy");
  }

  private fail(error: unknown): void {
    console.error(error);
    this.root.dataset.state = "error";
    this.root.removeAttribute("aria-busy");
    const signedOut = error instanceof HttpError && (error.status === 401 || error.status === 403);
    this.grid.replaceChildren(
      h(
        "div",
        { className: "viewer-message error" },
        h("p", {}, this.t(signedOut ? "app.signedOut" : "app.error")),
        signedOut ? null : h("p", {}, this.t("app.errorRetry")),
      ),
    );
  }

  private uids(): string[] {
    return this.series.map((series) => series.uid);
  }

  // --- Toolbar ---------------------------------------------------------------

  private buildToolbar(): HTMLElement {
    const t = this.t;
    const tools = TOOLBAR_TOOLS.map((tool) => {
      const button = h(
        "button",
        { type: "button", className: `tool tool-${tool}`, title: t(TOOL_LABELS[tool]), "aria-pressed": "false" },
        h("span", { className: "icon", "aria-hidden": "true" }, TOOL_ICONS[tool]),
        h("span", { className: "label" }, t(TOOL_LABELS[tool])),
      );
      button.addEventListener("click", () => this.selectTool(tool));
      this.toolButtons.set(tool, button);
      return button;
    });
    const action = (icon: string, label: MessageKey, run: () => void, key = "") =>
      h(
        "button",
        { type: "button", className: "tool action", title: key ? `${t(label)} (${key})` : t(label), onclick: run },
        h("span", { className: "icon", "aria-hidden": "true" }, icon),
        h("span", { className: "label" }, t(label)),
      );
    const layouts = (Object.keys(LAYOUTS) as LayoutId[]).map((id) => {
      const button = h("button", { type: "button", className: "layout", title: t(`action.layout${id}` as MessageKey) }, id.replace("x", "×"));
      button.addEventListener("click", () => this.run({ kind: "layout", layout: id }));
      this.layoutButtons.set(id, button);
      return button;
    });
    this.presetSelect.addEventListener("change", () => {
      const index = Number(this.presetSelect.value);
      if (Number.isInteger(index)) {
        this.applyPreset(index);
      }
      this.presetSelect.blur();
    });
    this.playButton.addEventListener("click", () => this.run({ kind: "cine" }));
    this.fpsInput.addEventListener("change", () => {
      const cell = this.activeCell();
      if (cell) {
        cell.cine.clock.setFps(Number(this.fpsInput.value));
        this.fpsInput.value = String(cell.cine.clock.framesPerSecond);
        this.queueOverlay(cell);
      }
    });
    return h(
      "header",
      { className: "viewer-toolbar", role: "toolbar", "aria-label": t("app.title") },
      this.config.homeUrl ? h("a", { className: "back", href: this.config.homeUrl }, `← ${t("app.back")}`) : null,
      h("div", { className: "group" }, tools),
      h("div", { className: "group" }, this.presetSelect),
      h(
        "div",
        { className: "group" },
        action("◐", "action.invert", () => this.run({ kind: "invert" }), "I"),
        action("⤢", "action.fit", () => this.run({ kind: "fit" }), "F"),
        action("↻", "action.rotateRight", () => this.run({ kind: "rotateRight" }), "."),
        action("⇋", "action.flipH", () => this.run({ kind: "flipH" }), "H"),
        action("⇵", "action.flipV", () => this.run({ kind: "flipV" }), "V"),
        action("⟲", "action.reset", () => this.run({ kind: "reset" }), "0"),
        action("✕", "action.deleteMeasurement", () => this.run({ kind: "deleteMeasurement" }), "Del"),
      ),
      h("div", { className: "group cine" }, this.playButton, this.fpsInput, h("span", { className: "unit" }, t("cine.fpsUnit"))),
      h("div", { className: "group", role: "group", "aria-label": t("action.layout") }, layouts),
      h(
        "div",
        { className: "group end" },
        action("#", "action.tags", () => this.run({ kind: "tags" }), "D"),
        action("?", "action.help", () => this.run({ kind: "help" }), "?"),
      ),
    );
  }

  private selectTool(tool: ToolName): void {
    setPrimaryTool(this.cs, this.primaryTool === tool ? null : this.primaryTool, tool);
    this.primaryTool = tool;
    for (const [name, button] of this.toolButtons) {
      button.setAttribute("aria-pressed", String(name === tool));
    }
  }

  // --- Series panel ------------------------------------------------------------

  private renderSeriesPanel(): void {
    const t = this.t;
    this.seriesItems.clear();
    this.seriesList.replaceChildren(
      ...this.series.map((series) => {
        const thumbnail = h("img", {
          className: "thumb",
          src: seriesThumbnailUrl(this.ref, series.uid),
          alt: "",
          loading: "lazy",
          draggable: "false",
        });
        const placeholder = h("span", { className: "thumb placeholder", "aria-hidden": "true" }, series.modality || "?");
        placeholder.hidden = true;
        thumbnail.addEventListener("error", () => {
          thumbnail.hidden = true;
          placeholder.hidden = false;
        });
        const status = h("span", { className: "status" });
        const count =
          series.instanceCount === null
            ? ""
            : series.instanceCount === 1
              ? t("series.image")
              : t("series.images", { count: series.instanceCount });
        const item = h(
          "li",
          {
            className: "series-item",
            draggable: "true",
            tabindex: 0,
            "data-series": series.uid,
            title: series.description || t("series.unnamed"),
          },
          thumbnail,
          placeholder,
          h(
            "span",
            { className: "meta" },
            h("strong", {}, [series.modality, series.number !== null ? `#${series.number}` : ""].filter(Boolean).join(" ")),
            h("span", { className: "desc" }, series.description || t("series.unnamed")),
            h("span", { className: "count" }, count),
            status,
          ),
        );
        item.addEventListener("dragstart", (event) => {
          event.dataTransfer?.setData(SERIES_MIME, series.uid);
          event.dataTransfer?.setData("text/plain", series.uid);
          if (event.dataTransfer) {
            event.dataTransfer.effectAllowed = "copy";
          }
        });
        item.addEventListener("dblclick", () => this.putSeries(this.layout.active, series.uid));
        item.addEventListener("keydown", (event) => {
          if (event.key === "Enter") {
            event.preventDefault();
            this.putSeries(this.layout.active, series.uid);
          }
        });
        this.seriesItems.set(series.uid, { item, status });
        return item;
      }),
    );
  }

  private markShownSeries(): void {
    const shown = new Set(this.layout.cells);
    const active = this.layout.cells[this.layout.active];
    for (const [uid, { item }] of this.seriesItems) {
      item.classList.toggle("shown", shown.has(uid));
      item.classList.toggle("active", uid === active);
    }
  }

  // --- Layout and viewports ------------------------------------------------------

  private applyLayout(next: LayoutState): void {
    const { rows, columns } = LAYOUTS[next.layout];
    const count = rows * columns;
    // Remove cells beyond the new grid.
    while (this.cells.length > count) {
      const cell = this.cells.pop();
      if (cell) {
        this.stopCine(cell);
        this.cs.toolGroup.removeViewports(RENDERING_ENGINE_ID, cell.viewportId);
        this.cs.renderingEngine.disableElement(cell.viewportId);
        cell.root.remove();
      }
    }
    this.grid.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
    this.grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
    while (this.cells.length < count) {
      const cell = this.createCell(this.cells.length);
      this.cells.push(cell);
      this.grid.append(cell.root);
      this.cs.renderingEngine.enableElement({
        viewportId: cell.viewportId,
        element: cell.element,
        type: Enums.ViewportType.STACK,
        defaultOptions: { background: [0, 0, 0] as Types.Point3 },
      });
      this.cs.toolGroup.addViewport(cell.viewportId, RENDERING_ENGINE_ID);
    }
    // The grid changed size: let Cornerstone size its canvases to it.
    this.cs.renderingEngine.resize(true, true);
    this.layout = next;
    for (const cell of this.cells) {
      const uid = next.cells[cell.index] ?? null;
      if (uid !== cell.seriesUid) {
        void this.showSeries(cell, uid);
      }
      cell.root.classList.toggle("active", cell.index === next.active);
    }
    for (const [id, button] of this.layoutButtons) {
      button.setAttribute("aria-pressed", String(id === next.layout));
    }
    this.markShownSeries();
    this.refreshActiveControls();
  }

  private createCell(index: number): Cell {
    const t = this.t;
    const viewportId = `viewport-${this.nextViewportNumber++}`;
    const element = h("div", { className: "viewport-element" });
    // Cornerstone's tools use the right button; the browser's menu would cover the image.
    element.addEventListener("contextmenu", (event) => event.preventDefault());
    const corner = (name: string) => h("div", { className: `overlay ${name}`, "aria-hidden": "true" });
    const marker = (name: string) => h("div", { className: `marker ${name}`, "aria-hidden": "true" });
    const corners = {
      topLeft: corner("tl"),
      topRight: corner("tr"),
      bottomLeft: corner("bl"),
      bottomRight: corner("br"),
    };
    const markers = { top: marker("top"), bottom: marker("bottom"), left: marker("left"), right: marker("right") };
    const scrollbar = h("input", {
      type: "range",
      className: "scrollbar",
      min: 0,
      max: 0,
      value: 0,
      step: 1,
      "aria-label": t("tool.scroll"),
    });
    const progressBar = h("div", { className: "bar" });
    const progress = h("div", { className: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, progressBar);
    progress.hidden = true;
    const message = h("div", { className: "cell-message" }, t("viewport.empty"));
    const notice = h("div", { className: "notice", "aria-live": "polite" });
    const root = h(
      "div",
      { className: "viewport-cell", "data-cell": index },
      element,
      Object.values(corners),
      Object.values(markers),
      notice,
      message,
      scrollbar,
      progress,
    );
    const cell: Cell = {
      index,
      viewportId,
      root,
      element,
      corners,
      markers,
      notice,
      message,
      scrollbar,
      progress,
      progressBar,
      seriesUid: null,
      cine: { clock: new CineClock(15), playing: false, frame: null, pending: false },
      overlayQueued: false,
    };
    root.addEventListener("pointerdown", () => this.activate(cell.index), { capture: true });
    root.addEventListener("dragover", (event) => {
      if (event.dataTransfer?.types.includes(SERIES_MIME)) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        root.classList.add("drop-target");
      }
    });
    root.addEventListener("dragleave", () => root.classList.remove("drop-target"));
    root.addEventListener("drop", (event) => {
      root.classList.remove("drop-target");
      const uid = event.dataTransfer?.getData(SERIES_MIME);
      if (uid) {
        event.preventDefault();
        this.putSeries(cell.index, uid);
      }
    });
    scrollbar.addEventListener("input", () => {
      const viewport = this.viewportOf(cell);
      if (viewport) {
        void viewport.setImageIdIndex(Number(scrollbar.value));
      }
    });
    const rerender = () => this.queueOverlay(cell);
    element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
      if (cell.root.dataset.state === "ready") {
        markOnce(MARKS.firstImage);
      }
    });
    element.addEventListener(Enums.Events.IMAGE_RENDERED, rerender);
    element.addEventListener(Enums.Events.STACK_NEW_IMAGE, rerender);
    element.addEventListener(Enums.Events.VOI_MODIFIED, rerender);
    element.addEventListener(Enums.Events.CAMERA_MODIFIED, rerender);
    return cell;
  }

  private activate(index: number): void {
    if (index === this.layout.active) {
      return;
    }
    this.layout = setActive(this.layout, index);
    for (const cell of this.cells) {
      cell.root.classList.toggle("active", cell.index === index);
    }
    this.markShownSeries();
    this.refreshActiveControls();
  }

  private putSeries(cellIndex: number, uid: string): void {
    const next = assignSeries(this.layout, cellIndex, uid);
    const cell = this.cells[cellIndex];
    this.layout = next;
    for (const other of this.cells) {
      other.root.classList.toggle("active", other.index === next.active);
    }
    if (cell) {
      void this.showSeries(cell, uid);
    }
    this.markShownSeries();
    this.refreshActiveControls();
  }

  private activeCell(): Cell | undefined {
    return this.cells[this.layout.active];
  }

  private viewportOf(cell: Cell): StackViewport | undefined {
    return this.cs.renderingEngine.getViewport(cell.viewportId) as StackViewport | undefined;
  }

  // --- Loading ---------------------------------------------------------------------

  private stack(uid: string): Promise<SeriesStack> {
    let promise = this.stacks.get(uid);
    if (!promise) {
      promise = this.fetchStack(uid);
      this.stacks.set(uid, promise);
      // A failed metadata call may succeed on the next try (drag the series again).
      promise.catch(() => this.stacks.delete(uid));
    }
    return promise;
  }

  private async fetchStack(uid: string, scheme: ImageScheme = this.config.loader ?? "wadors"): Promise<SeriesStack> {
    const instances = await this.early.seriesMetadata(uid);
    const images = stackImages(this.ref, uid, instances, scheme);
    let spacing: SeriesStack["spacing"] = "pixel";
    for (const image of images) {
      if (image.frame === 1) {
        const prepared = withMeasurementSpacing(image.instance);
        spacing = prepared.spacing;
        if (scheme === "wadors") {
          // The loader reads pixel module, plane and VOI from this for every frame.
          const metadata = await withPaletteValues(prepared.metadata, (uri) => fetchBulkData(uri));
          dicomImageLoader.wadors.metaDataManager.add(image.imageId, metadata as never);
        }
      }
    }
    const stack: SeriesStack = { uid, images, scheme, spacing, loaded: 0, failed: 0, prefetching: false };
    this.loadedStacks.set(uid, stack);
    return stack;
  }

  private async showSeries(cell: Cell, uid: string | null): Promise<void> {
    this.stopCine(cell);
    cell.seriesUid = uid;
    cell.root.dataset.state = uid ? "loading" : "empty";
    cell.message.textContent = uid ? this.t("app.loading") : this.t("viewport.empty");
    cell.notice.textContent = "";
    this.clearOverlay(cell);
    if (!uid) {
      return;
    }
    let stack: SeriesStack;
    try {
      stack = await this.stack(uid);
    } catch (error) {
      console.error(error);
      if (cell.seriesUid === uid) {
        cell.root.dataset.state = "error";
        cell.message.textContent = this.t("viewport.loadFailed");
      }
      return;
    }
    if (cell.seriesUid !== uid) {
      return; // another series was dropped here meanwhile
    }
    if (stack.images.length === 0) {
      cell.root.dataset.state = "error";
      cell.message.textContent = this.t("series.unsupported");
      return;
    }
    if (stack.scheme === "wadors") {
      // The first frame may have been fetched while the viewer loaded: decode those bytes.
      const first = stack.images[0].imageId;
      const bytes = await this.early.frame(first);
      if (bytes) {
        registerFrame(first, bytes);
      }
      if (cell.seriesUid !== uid) {
        return;
      }
    }
    const viewport = this.viewportOf(cell);
    if (!viewport) {
      return;
    }
    markOnce(MARKS.stackReady);
    try {
      await viewport.setStack(
        stack.images.map((image) => image.imageId),
        0,
      );
    } catch (error) {
      if (stack.scheme === "wadors" && cell.seriesUid === uid) {
        // The frames endpoint failed (e.g. a transfer syntax it cannot serve):
        // fall back to whole files over WADO-URI.
        console.warn("WADO-RS frames failed, trying WADO-URI", error);
        const fallback = this.fetchStack(uid, "wadouri");
        this.stacks.set(uid, fallback);
        await fallback.catch(() => undefined);
        if (cell.seriesUid === uid) {
          return this.showSeries(cell, uid);
        }
        return;
      }
      console.error(error);
      if (cell.seriesUid === uid) {
        cell.root.dataset.state = "error";
        cell.message.textContent = this.t("viewport.loadFailed");
      }
      return;
    }
    if (cell.seriesUid !== uid) {
      return;
    }
    cell.root.dataset.state = "ready";
    cell.message.textContent = "";
    cell.scrollbar.max = String(stack.images.length - 1);
    cell.scrollbar.value = "0";
    cell.scrollbar.hidden = stack.images.length < 2;
    cell.cine.clock = new CineClock(defaultFrameRate(stack.images[0].instance));
    cell.notice.textContent =
      stack.spacing === "imager" ? this.t("overlay.imagerSpacing") : stack.spacing === "none" ? this.t("overlay.noSpacing") : "";
    viewport.render();
    this.refreshActiveControls();
    this.updateProgress(stack);
    this.prefetch(stack);
    if (isCineStack(stack.images) && cell.index === this.layout.active) {
      // A loop is read by playing it: start at once, like on the modality.
      this.startCine(cell);
    }
  }

  /**
   * Load the rest of the series in the background with a progress bar. Frames
   * are fetched a few at a time (the browser opens 6 connections per host;
   * more requests would only queue there, ahead of the reader's own), each
   * time the one nearest to the image on screen, so that a reader who scrolls
   * ahead finds the images there next. Fetching does not wait for decoding:
   * fetched frames go to the image loader's frame registry and are decoded
   * while the next ones are on the way.
   */
  private prefetch(stack: SeriesStack): void {
    if (stack.prefetching) {
      return;
    }
    stack.prefetching = true;
    const requested = new Uint8Array(stack.images.length);
    let fetching = 0;
    let inFlight = 0;
    const loadOne = async (imageId: string): Promise<void> => {
      // The image on screen, or one the reader scrolled to, is already on its way.
      if (!cache.getImageLoadObject(imageId)) {
        fetching += 1;
        try {
          if (stack.scheme === "wadors") {
            const bytes = await fetchFrame(imageId.replace(/^wadors:/, ""));
            if (!cache.getImageLoadObject(imageId)) {
              registerFrame(imageId, bytes);
            }
          } else {
            await imageLoader.loadAndCacheImage(imageId, { priority: 5, requestType: Enums.RequestType.Prefetch });
          }
        } catch {
          // Not fetched here: the image loader fetches it below, and reports what fails.
        } finally {
          fetching -= 1;
        }
        pump();
      }
      await imageLoader.loadAndCacheImage(imageId, { priority: 5, requestType: Enums.RequestType.Prefetch });
    };
    const pump = (): void => {
      while (fetching < PREFETCH_REQUESTS && inFlight < PREFETCH_PIPELINE) {
        const index = nearestPending(requested, this.shownIndex(stack));
        if (index < 0) {
          return;
        }
        requested[index] = 1;
        inFlight += 1;
        loadOne(stack.images[index].imageId)
          .then(
            () => {
              stack.loaded += 1;
            },
            () => {
              stack.failed += 1;
            },
          )
          .finally(() => {
            inFlight -= 1;
            this.updateProgress(stack);
            pump();
          });
      }
    };
    pump();
  }

  /** The image of *stack* on screen: in the active cell if it shows the stack, else in the first that does. */
  private shownIndex(stack: SeriesStack): number {
    const cells = this.cells.filter((cell) => cell.seriesUid === stack.uid);
    const cell = cells.find((candidate) => candidate.index === this.layout.active) ?? cells[0];
    const viewport = cell && this.viewportOf(cell);
    return viewport && cell.root.dataset.state === "ready" ? viewport.getCurrentImageIdIndex() : 0;
  }

  private updateProgress(stack: SeriesStack): void {
    const total = stack.images.length;
    const done = Math.min(total, stack.loaded + stack.failed);
    const percent = total ? Math.round((done / total) * 100) : 100;
    const finished = done >= total;
    const label = this.t("progress.loading", { done, total });
    for (const cell of this.cells) {
      if (cell.seriesUid === stack.uid) {
        cell.progress.hidden = finished;
        cell.progress.setAttribute("aria-valuenow", String(percent));
        cell.progress.title = label;
        cell.progressBar.style.width = `${percent}%`;
      }
    }
    const entry = this.seriesItems.get(stack.uid);
    if (entry) {
      entry.status.textContent = finished ? "" : label;
    }
    if (finished) {
      markOnce(MARKS.allLoaded);
      this.root.dataset.loaded = String(Number(this.root.dataset.loaded ?? 0) + 1);
    }
  }

  // --- Overlays ----------------------------------------------------------------------

  private queueOverlay(cell: Cell): void {
    if (cell.overlayQueued) {
      return;
    }
    cell.overlayQueued = true;
    requestAnimationFrame(() => {
      cell.overlayQueued = false;
      this.updateOverlay(cell);
    });
  }

  private clearOverlay(cell: Cell): void {
    for (const element of [...Object.values(cell.corners), ...Object.values(cell.markers)]) {
      element.textContent = "";
    }
    cell.scrollbar.hidden = true;
    cell.progress.hidden = true;
  }

  private currentImage(cell: Cell): StackImage | undefined {
    const stack = cell.seriesUid ? this.loadedStacks.get(cell.seriesUid) : undefined;
    const viewport = this.viewportOf(cell);
    if (!stack || !viewport || cell.root.dataset.state !== "ready") {
      return undefined;
    }
    return stack.images[viewport.getCurrentImageIdIndex()];
  }

  private currentWindow(viewport: StackViewport): Window | null {
    const { voiRange } = viewport.getProperties();
    return voiRange ? windowFromVoiRange(voiRange) : null;
  }

  private updateOverlay(cell: Cell): void {
    const viewport = this.viewportOf(cell);
    const image = this.currentImage(cell);
    const stack = cell.seriesUid ? this.loadedStacks.get(cell.seriesUid) : undefined;
    if (!viewport || !image || !stack) {
      return;
    }
    const index = viewport.getCurrentImageIdIndex();
    const voiWindow = this.currentWindow(viewport);
    const text = overlayText(
      image.instance,
      {
        imageIndex: index,
        imageCount: stack.images.length,
        frame: image.frame,
        frames: image.frames,
        window: voiWindow,
        zoom: this.displayZoom(viewport),
        fps: cell.cine.playing ? cell.cine.clock.framesPerSecond : null,
      },
      this.t,
    );
    setLines(cell.corners.topLeft, text.topLeft);
    setLines(cell.corners.topRight, text.topRight);
    setLines(cell.corners.bottomLeft, text.bottomLeft);
    setLines(cell.corners.bottomRight, text.bottomRight);
    if (document.activeElement !== cell.scrollbar) {
      cell.scrollbar.value = String(index);
    }
    const markers = this.orientationMarkers(viewport, image.instance);
    setLines(cell.markers.top, [markers?.top ?? ""]);
    setLines(cell.markers.bottom, [markers?.bottom ?? ""]);
    setLines(cell.markers.left, [markers?.left ?? ""]);
    setLines(cell.markers.right, [markers?.right ?? ""]);
    if (cell.index === this.layout.active) {
      cell.root.dataset.imageIndex = String(index);
    }
    // For tests and tools that read the view without parsing the overlay text: "width/center".
    cell.root.dataset.window = voiWindow
      ? `${formatWindowValue(voiWindow.width)}/${formatWindowValue(voiWindow.center)}`
      : "";
  }

  /** Image pixels per screen pixel ×100%: 100% shows each image pixel on one screen pixel. */
  private displayZoom(viewport: StackViewport): number {
    const camera = viewport.getCamera();
    const imageData = viewport.getImageData();
    const height = viewport.canvas.clientHeight;
    if (!camera.parallelScale || !imageData || !height) {
      return viewport.getZoom();
    }
    const rowSpacing = imageData.spacing[1] || 1;
    return (height / (2 * camera.parallelScale)) * rowSpacing;
  }

  private orientationMarkers(viewport: StackViewport, instance: DicomJsonDataset) {
    const camera = viewport.getCamera();
    if (!camera.viewUp || !camera.viewPlaneNormal) {
      return null;
    }
    const viewUp = camera.viewUp as unknown as Vec3;
    const normal = camera.viewPlaneNormal as unknown as Vec3;
    if (instance[Tag.ImageOrientationPatient]?.Value?.length === 6) {
      return markersFromCamera(viewUp, normal, directionLetters);
    }
    const orientation = instance[Tag.PatientOrientation]?.Value;
    if (orientation && orientation.length === 2) {
      return markersFromCamera(viewUp, normal, lettersFromPatientOrientation(String(orientation[0]), String(orientation[1])));
    }
    return null;
  }

  // --- Controls tied to the active viewport ---------------------------------------------

  private presetsFor(cell: Cell | undefined): { label: string; window: Window | "file" | "auto" }[] {
    const image = cell ? this.currentImage(cell) : undefined;
    const modality = image ? getString(image.instance, Tag.Modality) : "";
    const list: { label: string; window: Window | "file" | "auto" }[] = [
      { label: this.t("wl.file"), window: "file" },
      ...presetsForModality(modality).map((preset: WindowPreset) => ({
        label: `${this.t(preset.label)} ${preset.width}/${preset.center}`,
        window: { center: preset.center, width: preset.width },
      })),
    ];
    list.push({ label: this.t("wl.auto"), window: "auto" });
    return list;
  }

  private refreshActiveControls(): void {
    const cell = this.activeCell();
    const presets = this.presetsFor(cell);
    this.presetSelect.replaceChildren(
      h("option", { value: "", disabled: true, selected: true }, this.t("wl.presets")),
      ...presets.map((preset, index) =>
        h("option", { value: index }, `${index < 9 ? `${index + 1}  ` : ""}${preset.label}`),
      ),
    );
    const stack = cell?.seriesUid ? this.loadedStacks.get(cell.seriesUid) : undefined;
    const playable = !!stack && stack.images.length > 1;
    this.playButton.disabled = !playable;
    this.fpsInput.disabled = !playable;
    if (cell) {
      this.fpsInput.value = String(cell.cine.clock.framesPerSecond);
      this.playButton.textContent = cell.cine.playing ? "❚❚" : "▶";
      this.playButton.title = `${this.t(cell.cine.playing ? "action.pause" : "action.play")} (Space)`;
    }
    this.markShownSeries();
  }

  private applyPreset(index: number): void {
    const cell = this.activeCell();
    const viewport = cell && this.viewportOf(cell);
    const image = cell && this.currentImage(cell);
    const preset = this.presetsFor(cell)[index];
    if (!viewport || !image || !preset) {
      return;
    }
    if (preset.window === "file") {
      const window = fileWindow(image.instance);
      if (window) {
        viewport.setProperties({ voiRange: voiRangeFromWindow(window) });
      } else {
        // No window in the file: Cornerstone's default is the image's full range.
        const { invert } = viewport.getProperties();
        viewport.resetProperties();
        viewport.setProperties({ invert });
      }
    } else if (preset.window === "auto") {
      const csImage = viewport.getCornerstoneImage();
      if (csImage) {
        viewport.setProperties({ voiRange: voiRangeFromWindow(windowForRange(csImage.minPixelValue, csImage.maxPixelValue)) });
      }
    } else {
      viewport.setProperties({ voiRange: voiRangeFromWindow(preset.window) });
    }
    viewport.render();
  }

  // --- Cine ----------------------------------------------------------------------------

  private startCine(cell: Cell): void {
    const stack = cell.seriesUid ? this.loadedStacks.get(cell.seriesUid) : undefined;
    if (!stack || stack.images.length < 2 || cell.cine.playing) {
      return;
    }
    cell.cine.playing = true;
    cell.cine.clock.reset();
    cell.root.classList.add("playing");
    const step = (now: number) => {
      if (!cell.cine.playing) {
        return;
      }
      const advance = cell.cine.clock.tick(now);
      const viewport = this.viewportOf(cell);
      if (advance > 0 && viewport && !cell.cine.pending) {
        const next = advanceFrame(viewport.getCurrentImageIdIndex(), advance, stack.images.length);
        cell.cine.pending = true;
        // A frame still decoding holds the loop instead of queueing more requests.
        void viewport.setImageIdIndex(next).finally(() => {
          cell.cine.pending = false;
        });
      }
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
    if (cell.index === this.layout.active) {
      this.refreshActiveControls();
    }
    this.queueOverlay(cell);
  }

  private stopCine(cell: Cell): void {
    if (!cell.cine.playing) {
      return;
    }
    cell.cine.playing = false;
    cell.root.classList.remove("playing");
    if (cell.index === this.layout.active) {
      this.refreshActiveControls();
    }
    this.queueOverlay(cell);
  }

  // --- Actions ---------------------------------------------------------------------------

  private bindGlobalEvents(): void {
    document.addEventListener("keydown", (event) => {
      const target = event.target as HTMLElement | null;
      if (isDialogOpen()) {
        if (event.key === "Escape") {
          closeDialog();
          event.preventDefault();
        }
        return;
      }
      const typing =
        target instanceof HTMLInputElement
          ? target.type !== "range"
          : target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement || !!target?.isContentEditable;
      if (typing) {
        return;
      }
      const action = actionForKey(event);
      if (action) {
        event.preventDefault();
        this.run(action);
      }
    });
    const resize = new ResizeObserver(() => this.cs.renderingEngine.resize(true, true));
    resize.observe(this.grid);
  }

  run(action: Action): void {
    const cell = this.activeCell();
    const viewport = cell && this.viewportOf(cell);
    switch (action.kind) {
      case "tool":
        this.selectTool(action.tool);
        return;
      case "layout":
        this.applyLayout(setLayout(this.layout, action.layout, this.uids()));
        return;
      case "nextViewport":
        this.activate(nextActive(this.layout).active);
        return;
      case "help":
        showHelp(this.t);
        return;
      case "tags": {
        const image = cell && this.currentImage(cell);
        void showTags(this.t, image?.instance ?? null);
        return;
      }
      case "close":
        closeDialog();
        return;
      case "deleteMeasurement":
        deleteSelectedAnnotations();
        this.cs.renderingEngine.render();
        return;
      case "preset":
        this.applyPreset(action.index);
        return;
      default:
        break;
    }
    if (!cell || !viewport || cell.root.dataset.state !== "ready") {
      return;
    }
    const count = viewport.getImageIds().length;
    switch (action.kind) {
      case "scroll": {
        this.stopCine(cell);
        const next = Math.min(count - 1, Math.max(0, viewport.getCurrentImageIdIndex() + action.delta));
        void viewport.setImageIdIndex(next);
        return;
      }
      case "scrollTo":
        this.stopCine(cell);
        void viewport.setImageIdIndex(action.position === "first" ? 0 : count - 1);
        return;
      case "invert":
        viewport.setProperties({ invert: !viewport.getProperties().invert });
        break;
      case "fit": {
        // Fit keeps rotation and flips: only zoom and pan go back.
        const presentation = viewport.getViewPresentation();
        viewport.resetCamera({ resetPan: true, resetZoom: true, resetToCenter: true });
        viewport.setViewPresentation({
          rotation: presentation.rotation,
          flipHorizontal: presentation.flipHorizontal,
          flipVertical: presentation.flipVertical,
        });
        break;
      }
      case "rotateRight":
      case "rotateLeft": {
        const rotation = viewport.getViewPresentation().rotation ?? 0;
        const step = action.kind === "rotateRight" ? 90 : 270;
        viewport.setViewPresentation({ rotation: (rotation + step) % 360 });
        break;
      }
      case "flipH":
        viewport.setCamera({ flipHorizontal: !viewport.getCamera().flipHorizontal });
        break;
      case "flipV":
        viewport.setCamera({ flipVertical: !viewport.getCamera().flipVertical });
        break;
      case "reset":
        this.stopCine(cell);
        viewport.resetCamera();
        viewport.setViewPresentation({ rotation: 0, flipHorizontal: false, flipVertical: false });
        viewport.resetProperties();
        break;
      case "cine":
        if (cell.cine.playing) {
          this.stopCine(cell);
        } else {
          this.startCine(cell);
        }
        return;
      case "faster":
      case "slower":
        cell.cine.clock.setFps(stepFps(cell.cine.clock.framesPerSecond, action.kind === "faster" ? 1 : -1));
        this.refreshActiveControls();
        this.queueOverlay(cell);
        return;
      default:
        return;
    }
    viewport.render();
  }

  // --- Hooks for co-reading (frontend/src/coreading/, which drives the viewer through these) ---

  /** The layout, each cell's series and the active cell. */
  get layoutState(): LayoutState {
    return this.layout;
  }

  /** The Cornerstone viewport of cell *index* once it shows its series' images. */
  readyViewport(index: number): StackViewport | undefined {
    const cell = this.cells[index];
    return cell && cell.root.dataset.state === "ready" ? this.viewportOf(cell) : undefined;
  }

  /** Show series *uid* in cell *index*, as a drop does (the cell becomes active). */
  showSeriesInCell(index: number, uid: string): void {
    this.putSeries(index, uid);
  }

  activateCell(index: number): void {
    this.activate(index);
  }
}

const TOOL_ICONS: Record<ToolName, string> = {
  windowLevel: "☀",
  zoom: "⊕",
  pan: "✥",
  scroll: "⇕",
  length: "↔",
  angle: "∠",
  rectangle: "▭",
  ellipse: "◯",
  arrow: "➚",
};
