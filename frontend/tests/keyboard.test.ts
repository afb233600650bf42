import { describe, expect, it } from "vitest";

import { actionForKey, KEY_BINDINGS } from "../src/keyboard";

describe("keyboard map", () => {
  it("scrolls with the arrow keys and pages", () => {
    expect(actionForKey({ key: "ArrowDown" })).toEqual({ kind: "scroll", delta: 1 });
    expect(actionForKey({ key: "ArrowRight" })).toEqual({ kind: "scroll", delta: 1 });
    expect(actionForKey({ key: "ArrowUp" })).toEqual({ kind: "scroll", delta: -1 });
    expect(actionForKey({ key: "PageDown" })).toEqual({ kind: "scroll", delta: 10 });
    expect(actionForKey({ key: "Home" })).toEqual({ kind: "scrollTo", position: "first" });
  });

  it("picks tools by letter, upper or lower case", () => {
    expect(actionForKey({ key: "l" })).toEqual({ kind: "tool", tool: "length" });
    expect(actionForKey({ key: "W" })).toEqual({ kind: "tool", tool: "windowLevel" });
    expect(actionForKey({ key: "e" })).toEqual({ kind: "tool", tool: "ellipse" });
  });

  it("maps digits to window presets, 1 being the file's window", () => {
    expect(actionForKey({ key: "1", code: "Digit1" })).toEqual({ kind: "preset", index: 0 });
    expect(actionForKey({ key: "3", code: "Digit3" })).toEqual({ kind: "preset", index: 2 });
  });

  it("switches layouts with Shift+digit whatever the keyboard layout prints", () => {
    expect(actionForKey({ key: "!", code: "Digit1", shiftKey: true })).toEqual({ kind: "layout", layout: "1x1" });
    expect(actionForKey({ key: "@", code: "Digit2", shiftKey: true })).toEqual({ kind: "layout", layout: "1x2" });
    expect(actionForKey({ key: "#", code: "Digit3", shiftKey: true })).toEqual({ kind: "layout", layout: "2x2" });
  });

  it("opens the help sheet with ?", () => {
    expect(actionForKey({ key: "?", code: "Slash", shiftKey: true })).toEqual({ kind: "help" });
  });

  it("leaves Tab to the keyboard focus", () => {
    expect(actionForKey({ key: "Tab" })).toBeNull();
    expect(actionForKey({ key: "n" })).toEqual({ kind: "nextViewport" });
  });

  it("leaves browser shortcuts alone", () => {
    expect(actionForKey({ key: "r", ctrlKey: true })).toBeNull();
    expect(actionForKey({ key: "1", altKey: true })).toBeNull();
    expect(actionForKey({ key: "c", metaKey: true })).toBeNull();
    expect(actionForKey({ key: "q" })).toBeNull();
  });

  it("binds no key twice", () => {
    const seen = new Set<string>();
    for (const binding of KEY_BINDINGS) {
      for (const key of binding.keys) {
        const id = `${binding.shift ? "shift+" : ""}${key}`;
        expect(seen.has(id), id).toBe(false);
        seen.add(id);
      }
    }
  });
});
