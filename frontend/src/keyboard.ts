// Keyboard shortcuts: one table, used by the key handler and by the help sheet.

import type { MessageKey } from "./i18n";

export type ToolName =
  | "windowLevel"
  | "zoom"
  | "pan"
  | "scroll"
  | "length"
  | "angle"
  | "rectangle"
  | "ellipse"
  | "arrow";

export type Action =
  | { kind: "tool"; tool: ToolName }
  | { kind: "scroll"; delta: number }
  | { kind: "scrollTo"; position: "first" | "last" }
  | { kind: "preset"; index: number }
  | { kind: "layout"; layout: LayoutId }
  | {
      kind:
        | "invert"
        | "fit"
        | "rotateRight"
        | "rotateLeft"
        | "flipH"
        | "flipV"
        | "reset"
        | "deleteMeasurement"
        | "cine"
        | "faster"
        | "slower"
        | "tags"
        | "help"
        | "close"
        | "nextViewport";
    };

export type LayoutId = "1x1" | "1x2" | "2x2";

export interface KeyBinding {
  /** `KeyboardEvent.key` (letters lower-case) or, for digits with Shift, `KeyboardEvent.code`. */
  keys: readonly string[];
  shift?: boolean;
  action: Action;
  label: MessageKey;
  /** How the help sheet shows the keys. */
  display: string;
}

export const TOOL_LABELS: Record<ToolName, MessageKey> = {
  windowLevel: "tool.windowLevel",
  zoom: "tool.zoom",
  pan: "tool.pan",
  scroll: "tool.scroll",
  length: "tool.length",
  angle: "tool.angle",
  rectangle: "tool.rectangle",
  ellipse: "tool.ellipse",
  arrow: "tool.arrow",
};

const tool = (t: ToolName, key: string): KeyBinding => ({
  keys: [key],
  action: { kind: "tool", tool: t },
  label: TOOL_LABELS[t],
  display: key.toUpperCase(),
});

export const KEY_BINDINGS: readonly KeyBinding[] = [
  { keys: ["arrowdown", "arrowright"], action: { kind: "scroll", delta: 1 }, label: "action.nextImage", display: "↓ →" },
  { keys: ["arrowup", "arrowleft"], action: { kind: "scroll", delta: -1 }, label: "action.prevImage", display: "↑ ←" },
  { keys: ["pagedown"], action: { kind: "scroll", delta: 10 }, label: "action.pageDown", display: "PgDn" },
  { keys: ["pageup"], action: { kind: "scroll", delta: -10 }, label: "action.pageUp", display: "PgUp" },
  { keys: ["home"], action: { kind: "scrollTo", position: "first" }, label: "action.firstImage", display: "Home" },
  { keys: ["end"], action: { kind: "scrollTo", position: "last" }, label: "action.lastImage", display: "End" },
  tool("windowLevel", "w"),
  tool("zoom", "z"),
  tool("pan", "p"),
  tool("scroll", "s"),
  tool("length", "l"),
  tool("angle", "a"),
  tool("rectangle", "r"),
  tool("ellipse", "e"),
  tool("arrow", "t"),
  { keys: ["i"], action: { kind: "invert" }, label: "action.invert", display: "I" },
  { keys: ["f"], action: { kind: "fit" }, label: "action.fit", display: "F" },
  { keys: ["."], action: { kind: "rotateRight" }, label: "action.rotateRight", display: "." },
  { keys: [","], action: { kind: "rotateLeft" }, label: "action.rotateLeft", display: "," },
  { keys: ["h"], action: { kind: "flipH" }, label: "action.flipH", display: "H" },
  { keys: ["v"], action: { kind: "flipV" }, label: "action.flipV", display: "V" },
  { keys: ["escape"], action: { kind: "close" }, label: "action.close", display: "Esc" },
  { keys: ["0"], action: { kind: "reset" }, label: "action.reset", display: "0" },
  { keys: ["delete", "backspace"], action: { kind: "deleteMeasurement" }, label: "action.deleteMeasurement", display: "Del" },
  { keys: [" "], action: { kind: "cine" }, label: "action.play", display: "Space" },
  { keys: ["]", "+", "="], action: { kind: "faster" }, label: "action.fasterCine", display: "] +" },
  { keys: ["[", "-"], action: { kind: "slower" }, label: "action.slowerCine", display: "[ −" },
  { keys: ["1"], action: { kind: "preset", index: 0 }, label: "wl.file", display: "1" },
  ...[2, 3, 4, 5, 6, 7, 8, 9].map(
    (n): KeyBinding => ({
      keys: [String(n)],
      action: { kind: "preset", index: n - 1 },
      label: "action.presetN",
      display: String(n),
    }),
  ),
  { keys: ["digit1"], shift: true, action: { kind: "layout", layout: "1x1" }, label: "action.layout1x1", display: "Shift+1" },
  { keys: ["digit2"], shift: true, action: { kind: "layout", layout: "1x2" }, label: "action.layout1x2", display: "Shift+2" },
  { keys: ["digit3"], shift: true, action: { kind: "layout", layout: "2x2" }, label: "action.layout2x2", display: "Shift+3" },
  // Not Tab: that moves the keyboard focus, and the toolbar must stay reachable.
  { keys: ["n"], action: { kind: "nextViewport" }, label: "action.nextViewport", display: "N" },
  { keys: ["d"], action: { kind: "tags" }, label: "action.tags", display: "D" },
  { keys: ["?"], action: { kind: "help" }, label: "action.help", display: "?" },
];

export interface KeyLike {
  key: string;
  code?: string;
  shiftKey?: boolean;
  ctrlKey?: boolean;
  altKey?: boolean;
  metaKey?: boolean;
}

/**
 * The action for a key press, or null. Presses with Ctrl, Alt or Meta belong
 * to the browser (copy, tab switching, …) and are never taken.
 */
export function actionForKey(event: KeyLike): Action | null {
  if (event.ctrlKey || event.altKey || event.metaKey) {
    return null;
  }
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key.toLowerCase();
  const code = (event.code ?? "").toLowerCase();
  if (event.shiftKey) {
    // Shift+digit gives "!", "@" or "#" as key depending on the keyboard layout; the code is stable.
    const shifted = KEY_BINDINGS.find((binding) => binding.shift && binding.keys.includes(code));
    if (shifted) {
      return shifted.action;
    }
  }
  const binding = KEY_BINDINGS.find((candidate) => !candidate.shift && candidate.keys.includes(key));
  return binding ? binding.action : null;
}
