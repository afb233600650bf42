// The co-reading protocol, version 1, as the browser speaks it: message types,
// building client messages and checking what the server sends. The contract is
// docs/coreading.md; the server's side of it is coreading/protocol.py. Nothing
// here touches the DOM, Cornerstone or the socket, so Vitest covers all of it.

export const PROTOCOL_VERSION = 1;

export type LayoutId = "1x1" | "1x2" | "2x2";
export type Mode = "follow" | "free";
export type AnnotationKind = "length" | "arrow" | "angle" | "ellipse" | "rectangle";
/** Image coordinates: columns, rows; pixel centres at integers + 0.5 (as Cornerstone's). */
export type Point = [number, number];

export const LAYOUT_CELLS: Record<LayoutId, number> = { "1x1": 1, "1x2": 2, "2x2": 4 };
export const ANNOTATION_POINTS: Record<AnnotationKind, number> = {
  length: 2,
  arrow: 2,
  angle: 3,
  ellipse: 2,
  rectangle: 2,
};
export const MAX_CHAT = 2000;
export const MAX_LABEL = 200;
const MAX_COORDINATE = 1_000_000;
const MAX_IMAGE = 100_000;

export interface WindowLevel {
  center: number;
  width: number;
}

export interface ViewportCell {
  /** The series in this cell; null for an empty cell (see docs/coreading-client-notes.md). */
  series: string | null;
  image: number;
  window: WindowLevel | null;
  zoom: number;
  pan: [number, number];
  rotation: number;
  flip: { h: boolean; v: boolean };
  invert: boolean;
}

export interface Viewport {
  layout: LayoutId;
  active: number;
  cells: ViewportCell[];
}

export interface Institution {
  code: string;
  name: string;
  name_en: string;
}

export interface Participant {
  conn: string;
  user: number;
  name: string;
  institution: Institution | null;
  role: string;
  colour: string;
  mode: Mode;
  joined_at: number;
}

export interface You {
  conn: string;
  user: number;
  colour: string;
  mode: Mode;
}

export interface Person {
  user: number;
  name: string;
}

export interface AnnotationFields {
  kind: AnnotationKind;
  series: string;
  instance: string;
  /** 0-based frame of a multi-frame instance; 0 otherwise. */
  frame: number;
  points: Point[];
  text: string;
}

export interface ServerAnnotation extends AnnotationFields {
  id: string;
  version: number;
  author: Person;
  colour: string;
  created_at: string;
  updated_at: string;
  updated_by: Person | null;
}

export interface ChatMessage {
  id: number;
  text: string;
  author: Person;
  colour: string;
  at: string;
}

export interface RoomSummary {
  id: string;
  kind: string;
  title: string;
  study: string;
  consultation: string | null;
}

export interface Limits {
  max_message_bytes: number;
  pointer_per_second: number;
  messages_per_second: number;
  chat_history: number;
}

export interface Snapshot {
  epoch: string;
  seq: number;
  room: RoomSummary;
  you: You;
  participants: Participant[];
  leader: string | null;
  viewport: Viewport | null;
  annotations: ServerAnnotation[];
  chat: ChatMessage[];
  limits: Partial<Limits>;
}

export type PointerData = { series: string; image: number; x: number; y: number } | { hidden: true };

export type LeaderReason = "first" | "granted" | "claimed" | "left";

/** What every server message carries besides its type and data. */
export interface Envelope {
  v: 1;
  /** On sequenced kinds only. */
  seq?: number;
  /** The connection that caused it. */
  from?: string;
  user?: number;
  /** The sender's client message id. */
  id?: string;
}

interface Typed<T extends string, D> extends Envelope {
  type: T;
  data: D;
}

export type SequencedMessage =
  | Typed<"presence.joined", Participant>
  | Typed<"presence.left", { conn: string; reason: string }>
  | Typed<"presence.updated", { conn: string; mode: Mode }>
  | Typed<"leader.changed", { leader: string | null; previous: string | null; reason: LeaderReason | string }>
  | Typed<"viewport", Viewport>
  | Typed<"annotation.created", ServerAnnotation>
  | Typed<"annotation.updated", ServerAnnotation>
  | Typed<"annotation.deleted", { annotation: string; version: number }>
  | Typed<"chat", ChatMessage>
  | Typed<"room.closed", { reason: string }>;

export type UnsequencedMessage =
  | Typed<"snapshot", Snapshot>
  | Typed<"resumed", { epoch: string; seq: number; you: You | null }>
  | Typed<"pointer", PointerData>
  | Typed<"leader.requested", { conn: string }>
  | Typed<"ack", { seq: number | null; duplicate: boolean }>
  | Typed<"error", { code: string; message: string; [extra: string]: unknown }>
  | Typed<"pong", Record<string, never>>;

export type ServerMessage = SequencedMessage | UnsequencedMessage;
/** A sequenced message once checked: its seq is there. */
export type Numbered = SequencedMessage & { seq: number };

export const SEQUENCED_TYPES = [
  "presence.joined",
  "presence.left",
  "presence.updated",
  "leader.changed",
  "viewport",
  "annotation.created",
  "annotation.updated",
  "annotation.deleted",
  "chat",
  "room.closed",
] as const;
export const UNSEQUENCED_TYPES = ["snapshot", "resumed", "pointer", "leader.requested", "ack", "error", "pong"] as const;

export function isSequenced(message: ServerMessage): message is Numbered {
  return (SEQUENCED_TYPES as readonly string[]).includes(message.type);
}

// --- Client messages -----------------------------------------------------------------

export interface ClientData {
  join: { mode?: Mode; resume?: { epoch: string; seq: number } };
  sync: { seq: number };
  ping: Record<string, never>;
  mode: { mode: Mode };
  viewport: Viewport;
  pointer: PointerData;
  "leader.request": Record<string, never>;
  "leader.grant": { to: string };
  "annotation.create": AnnotationFields;
  "annotation.update": { annotation: string; version: number; points?: Point[]; text?: string };
  "annotation.delete": { annotation: string };
  chat: { text: string };
}
export type ClientType = keyof ClientData;

export interface ClientMessage<T extends ClientType = ClientType> {
  v: 1;
  type: T;
  id?: string;
  data: ClientData[T];
}

/** Kinds the server refuses without a client message id (their resends must be idempotent). */
export const ID_REQUIRED: ReadonlySet<ClientType> = new Set<ClientType>([
  "mode",
  "viewport",
  "leader.grant",
  "annotation.create",
  "annotation.update",
  "annotation.delete",
  "chat",
]);

const CLIENT_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const UID = /^[0-9.]{1,64}$/;
const CONNECTION = /^[A-Za-z0-9]{1,32}$/;

export function isUid(value: unknown): value is string {
  return typeof value === "string" && UID.test(value);
}

export function isClientId(value: unknown): value is string {
  return typeof value === "string" && CLIENT_ID.test(value);
}

/** Client message ids: a random prefix per page load and a counter, unique for far longer than 10 minutes. */
export class MessageIds {
  private counter = 0;
  readonly prefix: string;

  constructor(random: () => number = Math.random) {
    this.prefix = Array.from({ length: 8 }, () => "abcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(random() * 36) % 36]).join("");
  }

  next(): string {
    this.counter += 1;
    return `${this.prefix}-${this.counter}`;
  }
}

export function clientMessage<T extends ClientType>(type: T, data: ClientData[T], id?: string): ClientMessage<T> {
  if (ID_REQUIRED.has(type) && !id) {
    throw new Error(`a ${type} message needs an id`);
  }
  if (id !== undefined && !isClientId(id)) {
    throw new Error(`bad client message id ${id}`);
  }
  const message: ClientMessage<T> = { v: PROTOCOL_VERSION, type, data };
  if (id !== undefined) {
    message.id = id;
  }
  return message;
}

export function encode(message: ClientMessage): string {
  return JSON.stringify(message);
}

/** UTF-8 size of an encoded message, to stay under the server's limit. */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}

// --- Making outgoing values acceptable ----------------------------------------------------

function clamp(value: number, low: number, high: number, fallback: number): number {
  return Number.isFinite(value) ? Math.min(high, Math.max(low, value)) : fallback;
}

/** Round for the wire: measurements need no more than 1/1000 of a pixel. */
function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Degrees in [0, 360). */
export function normalizeRotation(degrees: number): number {
  if (!Number.isFinite(degrees)) {
    return 0;
  }
  const turned = ((degrees % 360) + 360) % 360;
  return round(turned, 3) % 360;
}

/** A viewport within the server's limits (zoom 0.01–100, rotation 0–360, finite numbers). */
export function sanitizeViewport(viewport: Viewport): Viewport {
  const count = LAYOUT_CELLS[viewport.layout];
  return {
    layout: viewport.layout,
    active: Math.min(count - 1, Math.max(0, Math.floor(viewport.active) || 0)),
    cells: viewport.cells.slice(0, count).map((cell) => ({
      series: cell.series,
      image: Math.min(MAX_IMAGE, Math.max(0, Math.floor(cell.image) || 0)),
      window:
        cell.window && Number.isFinite(cell.window.center) && Number.isFinite(cell.window.width) && cell.window.width > 0
          ? {
              center: round(clamp(cell.window.center, -MAX_COORDINATE, MAX_COORDINATE, 0)),
              width: round(clamp(cell.window.width, 0.001, MAX_COORDINATE, 1)),
            }
          : null,
      zoom: round(clamp(cell.zoom, 0.01, 100, 1), 4),
      pan: [round(clamp(cell.pan[0], -MAX_COORDINATE, MAX_COORDINATE, 0)), round(clamp(cell.pan[1], -MAX_COORDINATE, MAX_COORDINATE, 0))],
      rotation: normalizeRotation(cell.rotation),
      flip: { h: !!cell.flip.h, v: !!cell.flip.v },
      invert: !!cell.invert,
    })),
  };
}

/** The reason a viewport would be refused by the server, or null when it is fine. */
export function viewportProblem(viewport: Viewport): string | null {
  const count = LAYOUT_CELLS[viewport.layout];
  if (count === undefined) {
    return "layout";
  }
  if (viewport.cells.length !== count) {
    return "cells";
  }
  if (!Number.isInteger(viewport.active) || viewport.active < 0 || viewport.active >= count) {
    return "active";
  }
  for (const [index, cell] of viewport.cells.entries()) {
    if (!isUid(cell.series)) {
      return `cells[${index}].series`;
    }
    if (!Number.isInteger(cell.image) || cell.image < 0 || cell.image > MAX_IMAGE) {
      return `cells[${index}].image`;
    }
    if (!(cell.zoom >= 0.01 && cell.zoom <= 100)) {
      return `cells[${index}].zoom`;
    }
    if (!(cell.rotation >= 0 && cell.rotation <= 360)) {
      return `cells[${index}].rotation`;
    }
    if (cell.window && !(cell.window.width > 0 && Number.isFinite(cell.window.center))) {
      return `cells[${index}].window`;
    }
    if (!cell.pan.every((value) => Number.isFinite(value) && Math.abs(value) <= MAX_COORDINATE)) {
      return `cells[${index}].pan`;
    }
  }
  return null;
}

/** Annotation fields within the server's limits, or null when they cannot be sent (bad UIDs, wrong point count). */
export function sanitizeAnnotation(fields: AnnotationFields): AnnotationFields | null {
  if (!(fields.kind in ANNOTATION_POINTS) || !isUid(fields.series) || !isUid(fields.instance)) {
    return null;
  }
  if (fields.points.length !== ANNOTATION_POINTS[fields.kind]) {
    return null;
  }
  if (!fields.points.every((point) => point.every((value) => Number.isFinite(value) && Math.abs(value) <= MAX_COORDINATE))) {
    return null;
  }
  return {
    kind: fields.kind,
    series: fields.series,
    instance: fields.instance,
    frame: Math.max(0, Math.floor(fields.frame) || 0),
    points: fields.points.map(([x, y]) => [round(x), round(y)] as Point),
    text: fields.text.trim().slice(0, MAX_LABEL),
  };
}

// --- Checking server messages ---------------------------------------------------------------

export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(what: string): never {
  throw new ProtocolViolation(what);
}

function str(value: unknown, what: string): string {
  return typeof value === "string" ? value : fail(`${what} is not text`);
}

function num(value: unknown, what: string): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fail(`${what} is not a number`);
}

function int(value: unknown, what: string): number {
  return Number.isInteger(value) ? (value as number) : fail(`${what} is not a whole number`);
}

function optionalStr(value: unknown, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

function mode(value: unknown): Mode {
  return value === "free" ? "free" : "follow";
}

function person(value: unknown, what: string): Person {
  if (!isObject(value)) {
    fail(`${what} is not a person`);
  }
  return { user: int(value.user, `${what}.user`), name: optionalStr(value.name) };
}

function institution(value: unknown): Institution | null {
  if (!isObject(value)) {
    return null;
  }
  return { code: optionalStr(value.code), name: optionalStr(value.name), name_en: optionalStr(value.name_en) };
}

export function checkParticipant(value: unknown): Participant {
  if (!isObject(value)) {
    fail("participant is not an object");
  }
  return {
    conn: str(value.conn, "participant.conn"),
    user: int(value.user, "participant.user"),
    name: optionalStr(value.name),
    institution: institution(value.institution),
    role: optionalStr(value.role),
    colour: optionalStr(value.colour, "#4c9aff"),
    mode: mode(value.mode),
    joined_at: typeof value.joined_at === "number" ? value.joined_at : 0,
  };
}

function checkYou(value: unknown): You {
  if (!isObject(value)) {
    fail("you is not an object");
  }
  return {
    conn: str(value.conn, "you.conn"),
    user: int(value.user, "you.user"),
    colour: optionalStr(value.colour, "#4c9aff"),
    mode: mode(value.mode),
  };
}

function checkWindow(value: unknown, what: string): WindowLevel | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (!isObject(value)) {
    fail(`${what} is not a window`);
  }
  return { center: num(value.center, `${what}.center`), width: num(value.width, `${what}.width`) };
}

function checkCell(value: unknown, index: number): ViewportCell {
  const what = `cells[${index}]`;
  if (!isObject(value)) {
    fail(`${what} is not an object`);
  }
  const series = value.series === null ? null : isUid(value.series) ? value.series : fail(`${what}.series is not a UID`);
  const pan = Array.isArray(value.pan) && value.pan.length === 2 ? value.pan : [0, 0];
  const flip = isObject(value.flip) ? value.flip : {};
  return {
    series,
    image: int(value.image ?? 0, `${what}.image`),
    window: checkWindow(value.window, `${what}.window`),
    zoom: value.zoom === undefined ? 1 : num(value.zoom, `${what}.zoom`),
    pan: [num(pan[0], `${what}.pan[0]`), num(pan[1], `${what}.pan[1]`)],
    rotation: value.rotation === undefined ? 0 : num(value.rotation, `${what}.rotation`),
    flip: { h: flip.h === true, v: flip.v === true },
    invert: value.invert === true,
  };
}

export function checkViewport(value: unknown): Viewport {
  if (!isObject(value)) {
    fail("viewport is not an object");
  }
  const layout = value.layout;
  if (layout !== "1x1" && layout !== "1x2" && layout !== "2x2") {
    fail("viewport.layout is unknown");
  }
  if (!Array.isArray(value.cells) || value.cells.length !== LAYOUT_CELLS[layout]) {
    fail("viewport.cells does not match the layout");
  }
  const active = value.active === undefined ? 0 : int(value.active, "viewport.active");
  return {
    layout,
    active: Math.min(LAYOUT_CELLS[layout] - 1, Math.max(0, active)),
    cells: value.cells.map((cell, index) => checkCell(cell, index)),
  };
}

function checkPoints(value: unknown, kind: AnnotationKind): Point[] {
  if (!Array.isArray(value) || value.length !== ANNOTATION_POINTS[kind]) {
    fail(`a ${kind} needs ${ANNOTATION_POINTS[kind]} points`);
  }
  return value.map((point, index) => {
    if (!Array.isArray(point) || point.length !== 2) {
      fail(`points[${index}] is not [x, y]`);
    }
    return [num(point[0], `points[${index}][0]`), num(point[1], `points[${index}][1]`)] as Point;
  });
}

export function checkAnnotation(value: unknown): ServerAnnotation {
  if (!isObject(value)) {
    fail("annotation is not an object");
  }
  const kind = value.kind;
  if (typeof kind !== "string" || !(kind in ANNOTATION_POINTS)) {
    fail("annotation.kind is unknown");
  }
  const typedKind = kind as AnnotationKind;
  return {
    id: str(value.id, "annotation.id"),
    kind: typedKind,
    series: isUid(value.series) ? value.series : fail("annotation.series is not a UID"),
    instance: isUid(value.instance) ? value.instance : fail("annotation.instance is not a UID"),
    frame: value.frame === undefined ? 0 : int(value.frame, "annotation.frame"),
    points: checkPoints(value.points, typedKind),
    text: optionalStr(value.text),
    version: int(value.version, "annotation.version"),
    author: person(value.author, "annotation.author"),
    colour: optionalStr(value.colour, "#4c9aff"),
    created_at: optionalStr(value.created_at),
    updated_at: optionalStr(value.updated_at),
    updated_by: isObject(value.updated_by) ? person(value.updated_by, "annotation.updated_by") : null,
  };
}

export function checkChat(value: unknown): ChatMessage {
  if (!isObject(value)) {
    fail("chat is not an object");
  }
  return {
    id: int(value.id, "chat.id"),
    text: str(value.text, "chat.text"),
    author: person(value.author, "chat.author"),
    colour: optionalStr(value.colour, "#4c9aff"),
    at: optionalStr(value.at),
  };
}

function checkSnapshot(value: Json): Snapshot {
  const room = isObject(value.room) ? value.room : fail("snapshot.room is missing");
  const list = (items: unknown, what: string): unknown[] => (Array.isArray(items) ? items : fail(`${what} is not a list`));
  return {
    epoch: str(value.epoch, "snapshot.epoch"),
    seq: int(value.seq, "snapshot.seq"),
    room: {
      id: str(room.id, "room.id"),
      kind: optionalStr(room.kind),
      title: optionalStr(room.title),
      study: optionalStr(room.study),
      consultation: typeof room.consultation === "string" ? room.consultation : null,
    },
    you: checkYou(value.you),
    participants: list(value.participants, "snapshot.participants").map(checkParticipant),
    leader: typeof value.leader === "string" ? value.leader : null,
    viewport: value.viewport === null || value.viewport === undefined ? null : checkViewport(value.viewport),
    annotations: list(value.annotations ?? [], "snapshot.annotations").map(checkAnnotation),
    chat: list(value.chat ?? [], "snapshot.chat").map(checkChat),
    limits: isObject(value.limits) ? (value.limits as Partial<Limits>) : {},
  };
}

function checkPointer(value: Json): PointerData {
  if (value.hidden === true) {
    return { hidden: true };
  }
  return {
    series: isUid(value.series) ? value.series : fail("pointer.series is not a UID"),
    image: int(value.image, "pointer.image"),
    x: num(value.x, "pointer.x"),
    y: num(value.y, "pointer.y"),
  };
}

const DATA_CHECKS: Record<ServerMessage["type"], (data: Json) => unknown> = {
  "presence.joined": checkParticipant,
  "presence.left": (data) => ({ conn: str(data.conn, "conn"), reason: optionalStr(data.reason, "left") }),
  "presence.updated": (data) => ({ conn: str(data.conn, "conn"), mode: mode(data.mode) }),
  "leader.changed": (data) => ({
    leader: typeof data.leader === "string" ? data.leader : null,
    previous: typeof data.previous === "string" ? data.previous : null,
    reason: optionalStr(data.reason),
  }),
  viewport: checkViewport,
  "annotation.created": checkAnnotation,
  "annotation.updated": checkAnnotation,
  "annotation.deleted": (data) => ({ annotation: str(data.annotation, "annotation"), version: int(data.version ?? 0, "version") }),
  chat: checkChat,
  "room.closed": (data) => ({ reason: optionalStr(data.reason) }),
  snapshot: checkSnapshot,
  resumed: (data) => ({
    epoch: str(data.epoch, "resumed.epoch"),
    seq: int(data.seq, "resumed.seq"),
    you: isObject(data.you) ? checkYou(data.you) : null,
  }),
  pointer: checkPointer,
  "leader.requested": (data) => ({ conn: str(data.conn, "conn") }),
  ack: (data) => ({ seq: Number.isInteger(data.seq) ? data.seq : null, duplicate: data.duplicate === true }),
  error: (data) => ({ ...data, code: optionalStr(data.code, "unknown"), message: optionalStr(data.message) }),
  pong: () => ({}),
};

/**
 * One frame from the server → a checked message. Throws ProtocolViolation for
 * anything the client cannot use (not JSON, another version, an unknown type,
 * a sequenced message without seq, data of the wrong shape).
 */
export function parseServerMessage(text: string): ServerMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    fail("not JSON");
  }
  if (!isObject(raw)) {
    fail("not an object");
  }
  if (raw.v !== PROTOCOL_VERSION) {
    fail(`protocol version ${String(raw.v)}`);
  }
  const type = raw.type;
  if (typeof type !== "string" || !(type in DATA_CHECKS)) {
    fail(`unknown type ${String(type)}`);
  }
  const data = raw.data === undefined ? {} : raw.data;
  if (!isObject(data)) {
    fail("data is not an object");
  }
  const message: Json = { v: PROTOCOL_VERSION, type, data: DATA_CHECKS[type as ServerMessage["type"]](data) };
  if ((SEQUENCED_TYPES as readonly string[]).includes(type)) {
    if (!Number.isInteger(raw.seq) || (raw.seq as number) < 0) {
      fail(`${type} without seq`);
    }
    message.seq = raw.seq;
  }
  if (typeof raw.from === "string" && CONNECTION.test(raw.from)) {
    message.from = raw.from;
  }
  if (Number.isInteger(raw.user)) {
    message.user = raw.user;
  }
  if (typeof raw.id === "string") {
    message.id = raw.id;
  }
  return message as unknown as ServerMessage;
}
