// Rows of the DICOM tag browser, from an instance's DICOM JSON.

import { formatPersonName, type DicomJsonDataset, type DicomJsonElement } from "./dicomJson";

export interface TagRow {
  /** "(0010,0010)", with ">" per nesting level for sequence items. */
  tag: string;
  depth: number;
  keyword: string;
  vr: string;
  value: string;
}

/** Tag → keyword lookup; the viewer loads a full dictionary lazily, tests pass a small one. */
export type Dictionary = (tag: string) => string | undefined;

const MAX_VALUES = 16;
const MAX_TEXT = 256;

export function formatTag(tag: string): string {
  const upper = tag.toUpperCase();
  return `(${upper.slice(0, 4)},${upper.slice(4, 8)})`;
}

function formatValue(element: DicomJsonElement, bulkLabel: string): string {
  if (element.BulkDataURI !== undefined || element.InlineBinary !== undefined) {
    return bulkLabel;
  }
  const list = element.Value ?? [];
  const shown = list.slice(0, MAX_VALUES).map((value) => {
    if (element.vr === "PN") {
      return formatPersonName(value);
    }
    if (value !== null && typeof value === "object") {
      return JSON.stringify(value);
    }
    return value === null ? "" : String(value);
  });
  let text = shown.join("\\");
  if (list.length > MAX_VALUES) {
    text += ` … (${list.length})`;
  }
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

/** Rows in tag order; sequences are followed by their items' rows, one level deeper. */
export function tagRows(dataset: DicomJsonDataset, dictionary: Dictionary, bulkLabel: string, depth = 0): TagRow[] {
  const rows: TagRow[] = [];
  for (const tag of Object.keys(dataset).sort()) {
    const element = dataset[tag];
    if (!element) {
      continue;
    }
    const isSequence = element.vr === "SQ";
    const items = isSequence ? ((element.Value ?? []) as DicomJsonDataset[]) : [];
    rows.push({
      tag: `${">".repeat(depth)}${formatTag(tag)}`,
      depth,
      keyword: dictionary(tag.toUpperCase()) ?? (Number.parseInt(tag.slice(0, 4), 16) % 2 === 1 ? "Private" : ""),
      vr: element.vr,
      value: isSequence ? `${items.length} item${items.length === 1 ? "" : "s"}` : formatValue(element, bulkLabel),
    });
    for (const item of items) {
      rows.push(...tagRows(item, dictionary, bulkLabel, depth + 1));
    }
  }
  return rows;
}

/** Rows whose tag, keyword or value contains *query* (case-insensitive). */
export function filterRows(rows: readonly TagRow[], query: string): TagRow[] {
  const needle = query.trim().toLowerCase();
  if (!needle) {
    return [...rows];
  }
  const compact = needle.replace(/[(),\s]/g, "");
  return rows.filter(
    (row) =>
      row.keyword.toLowerCase().includes(needle) ||
      row.value.toLowerCase().includes(needle) ||
      row.tag.replace(/[(),>\s]/g, "").toLowerCase().includes(compact),
  );
}
