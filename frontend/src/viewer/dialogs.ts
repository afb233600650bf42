// Modal sheets: keyboard help, the DICOM tag browser, and the arrow's text.

import dcmjs from "dcmjs";

import type { DicomJsonDataset } from "../dicomJson";
import type { Translator } from "../i18n";
import { KEY_BINDINGS } from "../keyboard";
import { filterRows, tagRows, type Dictionary, type TagRow } from "../tags";
import { h } from "./dom";

let open: { dialog: HTMLDialogElement; onClose?: () => void } | null = null;

export function isDialogOpen(): boolean {
  return open !== null;
}

export function closeDialog(): void {
  if (!open) {
    return;
  }
  const { dialog, onClose } = open;
  open = null;
  dialog.close();
  dialog.remove();
  onClose?.();
}

function openDialog(t: Translator, title: string, body: Node[], className: string, onClose?: () => void): HTMLDialogElement {
  closeDialog();
  const dialog = h(
    "dialog",
    { className: `viewer-dialog ${className}`, "aria-label": title },
    h(
      "header",
      {},
      h("h2", {}, title),
      h("button", { type: "button", className: "close", title: t("action.close"), onclick: () => closeDialog() }, "×"),
    ),
    body,
  );
  // Escape is handled by the viewer's key handler, so the dialog closes one way only.
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    closeDialog();
  });
  document.body.append(dialog);
  open = { dialog, onClose };
  dialog.showModal();
  return dialog;
}

export function showHelp(t: Translator): void {
  const item = (keys: string, label: string) => h("li", {}, h("kbd", {}, keys), h("span", {}, label));
  const items = KEY_BINDINGS.filter((binding) => binding.label !== "action.presetN").map((binding) =>
    item(binding.display, t(binding.label)),
  );
  items.push(item("2 … 9", t("wl.presets")));
  openDialog(t, t("help.title"), [h("p", { className: "hint" }, t("help.mouse")), h("ul", { className: "keys" }, items)], "help");
}

type DcmjsDictionary = Record<string, { name?: string } | undefined>;

/**
 * Keywords from dcmjs's full DICOM dictionary. Cornerstone's metadata package
 * already bundles dcmjs, so this costs nothing extra.
 */
function loadDictionary(): Promise<Dictionary> {
  const table = (dcmjs as { data: { DicomMetaDictionary: { dictionary: DcmjsDictionary } } }).data.DicomMetaDictionary
    .dictionary;
  return Promise.resolve((tag: string) => table[tag]?.name?.replace(/^RETIRED_/, ""));
}

export async function showTags(t: Translator, instance: DicomJsonDataset | null): Promise<void> {
  if (!instance) {
    openDialog(t, t("tags.title"), [h("p", {}, t("tags.noImage"))], "tags");
    return;
  }
  const filter = h("input", { type: "search", className: "filter", placeholder: t("tags.filter"), "aria-label": t("tags.filter") });
  const tbody = h("tbody", {});
  const table = h(
    "table",
    { className: "tag-table" },
    h("thead", {}, h("tr", {}, h("th", {}, t("tags.tag")), h("th", {}, t("tags.name")), h("th", {}, t("tags.vr")), h("th", {}, t("tags.value")))),
    tbody,
  );
  const dialog = openDialog(t, t("tags.title"), [filter, h("div", { className: "scroll" }, table)], "tags");
  const lookup = await loadDictionary().catch(() => ((_tag: string) => undefined) as Dictionary);
  if (!dialog.isConnected) {
    return;
  }
  const rows = tagRows(instance, lookup, t("tags.bulk"));
  const render = (list: readonly TagRow[]) =>
    tbody.replaceChildren(
      ...list.map((row) =>
        h(
          "tr",
          { className: `depth-${Math.min(row.depth, 3)}` },
          h("td", { className: "tag" }, row.tag),
          h("td", {}, row.keyword),
          h("td", {}, row.vr),
          h("td", { className: "value" }, row.value),
        ),
      ),
    );
  render(rows);
  filter.addEventListener("input", () => render(filterRows(rows, filter.value)));
  filter.focus();
}

/** Ask for the arrow's text; resolves to null when cancelled. */
export function askText(t: Translator, initial: string): Promise<string | null> {
  return new Promise((resolve) => {
    let answer: string | null = null;
    const input = h("input", { type: "text", className: "text", value: initial, "aria-label": t("annotation.prompt") });
    const form = h(
      "form",
      { method: "dialog" },
      input,
      h(
        "div",
        { className: "buttons" },
        h("button", { type: "button", onclick: () => closeDialog() }, t("annotation.cancel")),
        h("button", { type: "submit", className: "primary" }, t("annotation.ok")),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      answer = input.value;
      closeDialog();
    });
    openDialog(t, t("annotation.prompt"), [form], "prompt", () => resolve(answer));
    input.focus();
    input.select();
  });
}
