import { describe, expect, it } from "vitest";

import { languageFrom, messageKeys, messagesFor, translate, translator } from "../src/i18n";

describe("i18n", () => {
  it("takes the language from <html lang>, Korean by default", () => {
    expect(languageFrom("en")).toBe("en");
    expect(languageFrom("en-US")).toBe("en");
    expect(languageFrom("ko-KR")).toBe("ko");
    expect(languageFrom("")).toBe("ko");
    expect(languageFrom(null)).toBe("ko");
    expect(languageFrom("fr")).toBe("ko");
  });

  it("has every message in both languages, none empty", () => {
    for (const language of ["ko", "en"] as const) {
      const messages = messagesFor(language);
      for (const key of messageKeys()) {
        expect(messages[key], `${language}:${key}`).toBeTruthy();
      }
    }
  });

  it("keeps the same placeholders in Korean and English", () => {
    const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of messageKeys()) {
      expect(placeholders(messagesFor("ko")[key]), key).toEqual(placeholders(messagesFor("en")[key]));
    }
  });

  it("fills placeholders and leaves unknown ones visible", () => {
    expect(translate("ko", "progress.loading", { done: 3, total: 40 })).toBe("불러오는 중 3 / 40");
    expect(translate("en", "progress.loading", { done: 3, total: 40 })).toBe("Loading 3 / 40");
    expect(translate("en", "progress.loading", { done: 3 })).toBe("Loading 3 / {total}");
    expect(translator("ko")("tool.length")).toBe("길이");
  });
});
