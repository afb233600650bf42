// Cornerstone3D set-up: the rendering engine, the DICOM image loader (codecs
// and decode workers come from our own bundle) and the tools with ClinicNet's
// mouse bindings.

import { cache, init as coreInit, metaData, RenderingEngine } from "@cornerstonejs/core";
// The image loader's "imageLoader" entry, not its root: the root also pulls the
// codecs into the main bundle, where they are never used (decoding runs in the
// loader's web workers, which bundle their own codecs).
import dicomImageLoader from "@cornerstonejs/dicom-image-loader/imageLoader";
import {
  addTool,
  AngleTool,
  annotation,
  ArrowAnnotateTool,
  EllipticalROITool,
  Enums as ToolEnums,
  init as toolsInit,
  LengthTool,
  PanTool,
  RectangleROITool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
} from "@cornerstonejs/tools";

import type { Translator } from "../i18n";
import type { ToolName } from "../keyboard";
import { angleTextLines, lengthTextLines, roiTextLines, type RoiStats } from "../measurements";
import type { FrameBytes } from "../preload";

export const RENDERING_ENGINE_ID = "clinicnet";
export const TOOL_GROUP_ID = "clinicnet-stack";

export const TOOL_CLASS_NAMES: Record<ToolName, string> = {
  windowLevel: WindowLevelTool.toolName,
  zoom: ZoomTool.toolName,
  pan: PanTool.toolName,
  scroll: StackScrollTool.toolName,
  length: LengthTool.toolName,
  angle: AngleTool.toolName,
  rectangle: RectangleROITool.toolName,
  ellipse: EllipticalROITool.toolName,
  arrow: ArrowAnnotateTool.toolName,
};

export const ANNOTATION_TOOLS: readonly ToolName[] = ["length", "angle", "rectangle", "ellipse", "arrow"];

/** Buttons that keep their tool whatever the left button does. */
const FIXED_BINDINGS: Partial<Record<ToolName, ToolEnums.MouseBindings>> = {
  zoom: ToolEnums.MouseBindings.Secondary,
  pan: ToolEnums.MouseBindings.Auxiliary,
};

type TextCallback = (text: string) => void;
export type AskText = (initial: string) => Promise<string | null>;

// Cornerstone's stats arrive keyed by the viewport's target id.
type CachedStats = Record<string, RoiStats & { length?: number; unit?: string; angle?: number }>;
type Data = { cachedStats?: CachedStats };

export interface CornerstoneSetup {
  renderingEngine: RenderingEngine;
  toolGroup: NonNullable<ReturnType<typeof ToolGroupManager.getToolGroup>>;
}

// Frames fetched before Cornerstone asked (frontend/src/preload.ts). The WADO-RS
// loader looks up its "compressed frame data" metadata before it goes to the
// network, so a frame found here is decoded at once. Each is handed out once.
const registeredFrames = new Map<string, FrameBytes>();
const COMPRESSED_FRAME_DATA = "compressedFrameData";

function frameRegistryProvider(type: string, imageId: string): FrameBytes | undefined {
  if (type !== COMPRESSED_FRAME_DATA) {
    return undefined;
  }
  const frame = registeredFrames.get(imageId);
  registeredFrames.delete(imageId);
  return frame;
}

/** Let the image loader decode *frame* for *imageId* instead of fetching it. */
export function registerFrame(imageId: string, frame: FrameBytes): void {
  registeredFrames.set(imageId, frame);
}

export function initCornerstone(t: Translator, askText: AskText): CornerstoneSetup {
  // One WebGL context for every viewport (Cornerstone's default pool is seven):
  // stack viewports render in a few milliseconds each, one after the other,
  // while creating each context costs tens of milliseconds before the first
  // image (far more on PCs without a usable GPU, where WebGL is software).
  coreInit({ rendering: { webGlContextCount: 1 } } as Parameters<typeof coreInit>[0]);
  // Before every other provider: only this one knows frames fetched ahead.
  metaData.addProvider(frameRegistryProvider as (type: string, query: string) => unknown, 100_000);
  toolsInit();
  // Decoding runs in web workers bundled by Vite; two leave the main thread and
  // the rest of a modest clinic PC free.
  dicomImageLoader.init({ maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)) });
  // A CT of 500 slices at 512² × 2 bytes is ~250 MB; 1 GB holds several series.
  cache.setMaxCacheSize(1024 * 1024 * 1024);

  for (const tool of [
    WindowLevelTool,
    ZoomTool,
    PanTool,
    StackScrollTool,
    LengthTool,
    AngleTool,
    RectangleROITool,
    EllipticalROITool,
    ArrowAnnotateTool,
  ]) {
    addTool(tool);
  }

  const toolGroup = ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
  if (!toolGroup) {
    throw new Error("tool group already exists");
  }
  const stats = (data: Data, targetId: string) => data.cachedStats?.[targetId];
  toolGroup.addTool(WindowLevelTool.toolName);
  toolGroup.addTool(ZoomTool.toolName);
  toolGroup.addTool(PanTool.toolName);
  toolGroup.addTool(StackScrollTool.toolName, { loop: false });
  toolGroup.addTool(LengthTool.toolName, {
    getTextLines: (data: Data, targetId: string) => lengthTextLines(stats(data, targetId)),
  });
  // Cornerstone binds plain Z and Y to undo/redo while the length tool is
  // active; here Z picks the zoom tool and must not also undo a measurement.
  // (Set on the instance: the configuration merge keeps default bindings.)
  toolGroup.getToolInstance(LengthTool.toolName).configuration.actions = {};
  toolGroup.addTool(AngleTool.toolName, {
    getTextLines: (data: Data, targetId: string) => angleTextLines(stats(data, targetId)),
  });
  toolGroup.addTool(RectangleROITool.toolName, {
    getTextLines: (data: Data, targetId: string) => roiTextLines(stats(data, targetId), t),
  });
  toolGroup.addTool(EllipticalROITool.toolName, {
    getTextLines: (data: Data, targetId: string) => roiTextLines(stats(data, targetId), t),
  });
  toolGroup.addTool(ArrowAnnotateTool.toolName, {
    getTextCallback: (done: TextCallback) => {
      void askText("").then((text) => done(text ?? ""));
    },
    changeTextCallback: (data: { data?: { text?: string } }, _event: unknown, done: TextCallback) => {
      void askText(data.data?.text ?? "").then((text) => {
        if (text !== null) {
          done(text);
        }
      });
    },
  });

  // Every measurement can be selected, moved and deleted whatever the left button does.
  for (const name of ANNOTATION_TOOLS) {
    toolGroup.setToolPassive(TOOL_CLASS_NAMES[name]);
  }
  toolGroup.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: ToolEnums.MouseBindings.Secondary }] });
  toolGroup.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: ToolEnums.MouseBindings.Auxiliary }] });
  toolGroup.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: ToolEnums.MouseBindings.Wheel }] });

  const renderingEngine = new RenderingEngine(RENDERING_ENGINE_ID);
  return { renderingEngine, toolGroup };
}

/** Give the left mouse button to *tool*; the previous left-button tool goes back to its fixed buttons only. */
export function setPrimaryTool(setup: CornerstoneSetup, previous: ToolName | null, tool: ToolName): void {
  const { toolGroup } = setup;
  if (previous && previous !== tool) {
    toolGroup.setToolPassive(TOOL_CLASS_NAMES[previous]);
    const fixed = FIXED_BINDINGS[previous];
    if (fixed !== undefined) {
      toolGroup.setToolActive(TOOL_CLASS_NAMES[previous], { bindings: [{ mouseButton: fixed }] });
    }
  }
  toolGroup.setToolActive(TOOL_CLASS_NAMES[tool], { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] });
}

/** Delete the selected measurements; returns how many were removed. */
export function deleteSelectedAnnotations(): number {
  const selected = annotation.selection.getAnnotationsSelected() ?? [];
  for (const uid of selected) {
    annotation.state.removeAnnotation(uid);
  }
  return selected.length;
}
