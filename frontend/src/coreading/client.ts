// The co-reading connection and room state, without DOM or Cornerstone: the
// websocket's life (join, snapshot, resume, reconnect with backoff), applying
// server messages in sequence order, resending what the server never
// confirmed, and the follow/lead state. The viewer side (bridge.ts) and the
// panel (panel.ts) listen to it; tests drive it with a fake socket and clock.

import { AnnotationBook, type BookAction } from "./annotationBook";
import { Backoff, type BackoffOptions } from "./backoff";
import { applies, initialLead, isLeader, leadStep, type LeadEvent, type LeadState } from "./lead";
import {
  checkAnnotation,
  clientMessage,
  encode,
  isSequenced,
  MessageIds,
  parseServerMessage,
  ProtocolViolation,
  sanitizeAnnotation,
  sanitizeViewport,
  viewportProblem,
  MAX_CHAT,
  type AnnotationFields,
  type ChatMessage,
  type ClientData,
  type ClientMessage,
  type ClientType,
  type Mode,
  type Numbered,
  type Participant,
  type PointerData,
  type RoomSummary,
  type ServerMessage,
  type Viewport,
  type You,
} from "./protocol";
import { Sequencer } from "./sequence";
import { realClock, type Clock } from "./throttle";

/** The socket as the client uses it: the browser's WebSocket fits. */
export interface SocketLike {
  readonly readyState: number;
  send(text: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export type Status =
  /** First connection under way. */
  | "connecting"
  /** Joined: snapshot or resume received. */
  | "live"
  /** Lost; trying again with backoff. */
  | "reconnecting"
  /** The room was closed (4410). */
  | "closed"
  /** Access ended while connected (4403). */
  | "ended"
  /** No such room, not signed in, or not allowed (4404). */
  | "notfound"
  /** The server speaks another protocol version: reload. */
  | "outdated";

// Close codes from docs/coreading.md.
export const CLOSE_ACCESS_ENDED = 4403;
export const CLOSE_NOT_FOUND = 4404;
export const CLOSE_ROOM_CLOSED = 4410;
/** Our own code when the connection went silent (no pong) and we drop it. */
export const CLOSE_SILENT = 4000;

/** What a close code means for the client: try again, or stop with a status to show. */
export function closeAction(code: number): { reconnect: true } | { reconnect: false; status: Status } {
  switch (code) {
    case CLOSE_ACCESS_ENDED:
      return { reconnect: false, status: "ended" };
    case CLOSE_NOT_FOUND:
      return { reconnect: false, status: "notfound" };
    case CLOSE_ROOM_CLOSED:
      return { reconnect: false, status: "closed" };
    default:
      // 4408 (join timeout), 4503 (store unreachable), 1001, 1006, 1011, …
      return { reconnect: true };
  }
}

/** docs/coreading.md: 0.5 s doubling to 10 s, with jitter. */
export const RECONNECT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 10_000, factor: 2, jitter: 0.5 };
/** How long a gap in the sequence may stay open before asking for the missing messages. */
export const GAP_WAIT_MS = 500;
const PING_EVERY_MS = 20_000;
/** No message at all for this long (not even a pong): the connection is dead though not closed. */
const SILENCE_MS = 50_000;
/** Kinds that are resent after a reconnect until their echo or ack comes. */
const RESENT: ReadonlySet<ClientType> = new Set<ClientType>([
  "mode",
  "leader.grant",
  "annotation.create",
  "annotation.update",
  "annotation.delete",
  "chat",
]);

export interface ClientListener {
  status?(status: Status): void;
  /** Participants, leader or my follow mode changed. */
  people?(): void;
  /** Apply this viewport (a follower in follow mode; or the latest, when returning to follow). */
  viewport?(viewport: Viewport): void;
  pointer?(from: string, user: number | undefined, data: PointerData): void;
  chat?(): void;
  annotations?(actions: BookAction[]): void;
  /** A refusal or problem worth telling the user (already in their language when from the server). */
  problem?(code: string, message: string): void;
  /** Live again after a (re)connection: the leader should send its viewport. */
  joined?(): void;
}

interface Outgoing {
  id: string;
  message: ClientMessage;
}

export interface ClientOptions {
  url: string;
  socket: SocketFactory;
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffOptions;
}

export class CoreadingClient {
  status: Status = "connecting";
  room: RoomSummary | null = null;
  you: You | null = null;
  lead: LeadState = initialLead;
  readonly participants = new Map<string, Participant>();
  chat: ChatMessage[] = [];
  /** The leader's latest viewport, applied or not, and the connection that sent it. */
  latestViewport: Viewport | null = null;
  private latestFrom: string | null = null;
  readonly annotations: AnnotationBook;

  private epoch: string | null = null;
  private readonly sequencer = new Sequencer<Numbered>();
  private readonly ids: MessageIds;
  private readonly outbox: Outgoing[] = [];
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private socket: SocketLike | null = null;
  private joined = false;
  private stopped = false;
  private retryTimer: unknown = null;
  private gapTimer: unknown = null;
  private pingTimer: unknown = null;
  private lastHeard = 0;
  private readonly listeners: ClientListener[] = [];

  constructor(private readonly options: ClientOptions) {
    this.clock = options.clock ?? realClock;
    this.ids = new MessageIds(options.random);
    this.backoff = new Backoff(options.backoff ?? RECONNECT_BACKOFF, options.random);
    this.annotations = new AnnotationBook(() => this.ids.next());
  }

  listen(listener: ClientListener): void {
    this.listeners.push(listener);
  }

  private emit<K extends keyof ClientListener>(name: K, ...args: Parameters<NonNullable<ClientListener[K]>>): void {
    for (const listener of this.listeners) {
      const handler = listener[name] as ((...a: unknown[]) => void) | undefined;
      handler?.apply(listener, args);
    }
  }

  get lastSeq(): number {
    return this.sequencer.lastSeq;
  }

  get isLive(): boolean {
    return this.status === "live";
  }

  get leading(): boolean {
    return isLeader(this.lead);
  }

  // --- Connection ---------------------------------------------------------------------------

  connect(): void {
    this.stopped = false;
    this.open();
  }

  /** Leave the room for good (page closing). */
  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "leaving");
    }
  }

  private open(): void {
    this.retryTimer = null;
    let socket: SocketLike;
    try {
      socket = this.options.socket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.joined = false;
    socket.onopen = () => this.onOpen(socket);
    socket.onmessage = (event) => {
      if (socket === this.socket && typeof event.data === "string") {
        this.onText(event.data);
      }
    };
    socket.onclose = (event) => {
      if (socket === this.socket) {
        this.onClose(event.code);
      }
    };
    socket.onerror = () => undefined; // a close event follows
  }

  private onOpen(socket: SocketLike): void {
    if (socket !== this.socket) {
      return;
    }
    this.lastHeard = this.clock.now();
    const data: ClientData["join"] = { mode: this.lead.mode };
    if (this.epoch !== null) {
      data.resume = { epoch: this.epoch, seq: this.sequencer.lastSeq };
    }
    this.write(clientMessage("join", data));
    this.schedulePing();
  }

  private onClose(code: number): void {
    this.socket = null;
    this.joined = false;
    this.clearTimers();
    if (this.stopped) {
      return;
    }
    const action = closeAction(code);
    if (!action.reconnect) {
      this.setStatus(action.status);
      return;
    }
    this.setStatus(this.status === "connecting" && this.epoch === null ? "connecting" : "reconnecting");
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer !== null) {
      return;
    }
    this.retryTimer = this.clock.setTimeout(() => this.open(), this.backoff.next());
  }

  /** The network is back (the browser's `online`): try at once instead of waiting out the backoff. */
  retryNow(): void {
    if (this.retryTimer !== null) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.backoff.reset();
      this.open();
    }
  }

  private schedulePing(): void {
    this.pingTimer = this.clock.setTimeout(() => {
      this.pingTimer = null;
      if (!this.socket) {
        return;
      }
      if (this.clock.now() - this.lastHeard > SILENCE_MS) {
        // Half-open connection: nothing arrives, not even pongs. Drop it and reconnect.
        const socket = this.socket;
        this.onClose(CLOSE_SILENT);
        socket.onclose = null;
        socket.close(CLOSE_SILENT, "silent");
        return;
      }
      this.write(clientMessage("ping", {}));
      this.schedulePing();
    }, PING_EVERY_MS);
  }

  private clearTimers(): void {
    for (const timer of [this.retryTimer, this.gapTimer, this.pingTimer]) {
      if (timer !== null) {
        this.clock.clearTimeout(timer);
      }
    }
    this.retryTimer = this.gapTimer = this.pingTimer = null;
  }

  private setStatus(status: Status): void {
    if (status !== this.status) {
      this.status = status;
      this.emit("status", status);
    }
  }

  private write(message: ClientMessage): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) {
      return false;
    }
    socket.send(encode(message));
    return true;
  }

  /** Send now when joined; messages that must arrive wait in the outbox and are resent after a reconnect. */
  private send<T extends ClientType>(type: T, data: ClientData[T], id: string = this.ids.next()): string {
    const message = clientMessage(type, data, id);
    if (RESENT.has(type)) {
      this.outbox.push({ id, message });
    }
    if (this.joined) {
      this.write(message);
    }
    return id;
  }

  private settle(id: string | undefined): Outgoing | undefined {
    if (id === undefined) {
      return undefined;
    }
    const index = this.outbox.findIndex((entry) => entry.id === id);
    return index >= 0 ? this.outbox.splice(index, 1)[0] : undefined;
  }

  /** My chat messages not yet confirmed by the server. */
  pendingChat(): { id: string; text: string }[] {
    return this.outbox
      .filter((entry) => entry.message.type === "chat")
      .map((entry) => ({ id: entry.id, text: (entry.message.data as ClientData["chat"]).text }));
  }

  // --- Receiving -------------------------------------------------------------------------------

  private onText(text: string): void {
    this.lastHeard = this.clock.now();
    let message: ServerMessage;
    try {
      message = parseServerMessage(text);
    } catch (error) {
      if (error instanceof ProtocolViolation && error.message.startsWith("protocol version")) {
        this.setStatus("outdated");
        this.stop();
        return;
      }
      console.warn("co-reading: ignored a message", error);
      return;
    }
    this.receive(message);
  }

  /** One checked server message (public for tests and for replaying). */
  receive(message: ServerMessage): void {
    if (isSequenced(message)) {
      // Live or replayed before `resumed`: in seq order, once each.
      for (const ready of this.sequencer.accept(message)) {
        this.apply(ready);
      }
      this.watchGap();
      return;
    }
    switch (message.type) {
      case "snapshot":
        this.onSnapshot(message.data);
        return;
      case "resumed":
        this.onResumed(message.data);
        return;
      case "pointer":
        if (message.from && message.from !== this.you?.conn) {
          this.emit("pointer", message.from, message.user, message.data);
        }
        return;
      case "leader.requested":
        this.leadEvent({ type: "leadRequested", conn: message.data.conn });
        return;
      case "ack": {
        const settled = this.settle(message.id);
        if (message.id !== undefined) {
          this.bookActions(this.annotations.acknowledged(message.id));
        }
        if (settled?.message.type === "chat") {
          this.emit("chat");
        }
        return;
      }
      case "error":
        this.onError(message.id, message.data);
        return;
      case "pong":
        return;
    }
  }

  private watchGap(): void {
    if (!this.sequencer.hasGap || this.gapTimer !== null) {
      return;
    }
    this.gapTimer = this.clock.setTimeout(() => {
      this.gapTimer = null;
      if (this.sequencer.hasGap && this.joined) {
        this.write(clientMessage("sync", { seq: this.sequencer.lastSeq }));
        // If the answer is lost too, ask again later.
        this.gapTimer = this.clock.setTimeout(() => {
          this.gapTimer = null;
          this.watchGap();
        }, GAP_WAIT_MS * 4);
      }
    }, GAP_WAIT_MS);
  }

  private onSnapshot(data: Extract<ServerMessage, { type: "snapshot" }>["data"]): void {
    this.epoch = data.epoch;
    this.sequencer.reset(data.seq);
    this.room = data.room;
    this.you = data.you;
    this.participants.clear();
    for (const participant of data.participants) {
      this.participants.set(participant.conn, participant);
    }
    this.chat = [...data.chat].sort((a, b) => a.id - b.id);
    // The room's last viewport is the leader's (or, with nobody leading, nobody's to follow).
    this.latestViewport = data.viewport;
    this.latestFrom = data.leader;
    this.bookActions(this.annotations.snapshot(data.annotations));
    this.afterJoin(data.leader);
    this.emit("chat");
  }

  private onResumed(data: Extract<ServerMessage, { type: "resumed" }>["data"]): void {
    this.epoch = data.epoch;
    if (data.you) {
      this.you = data.you;
    }
    this.afterJoin(this.lead.leader);
  }

  private afterJoin(leader: string | null): void {
    this.joined = true;
    this.backoff.reset();
    const you = this.you;
    if (you) {
      // Keep the mode the user chose across reconnects; the join said it.
      this.leadEvent({ type: "joined", me: you.conn, leader, mode: this.lead.me === null ? you.mode : this.lead.mode });
    }
    for (const entry of this.outbox) {
      this.write(entry.message);
    }
    this.setStatus("live");
    this.emit("people");
    this.emit("joined");
  }

  private apply(message: Numbered): void {
    const mine = message.user !== undefined && message.user === this.you?.user;
    const clientId = mine && message.id !== undefined ? message.id : null;
    if (mine) {
      this.settle(message.id);
    }
    switch (message.type) {
      case "presence.joined":
        this.participants.set(message.data.conn, message.data);
        this.emit("people");
        return;
      case "presence.left":
        this.participants.delete(message.data.conn);
        this.leadEvent({ type: "left", conn: message.data.conn });
        this.emit("people");
        return;
      case "presence.updated": {
        const participant = this.participants.get(message.data.conn);
        if (participant) {
          participant.mode = message.data.mode;
        }
        this.emit("people");
        return;
      }
      case "leader.changed":
        this.leadEvent({ type: "leaderChanged", leader: message.data.leader });
        return;
      case "viewport":
        this.latestViewport = message.data;
        this.latestFrom = message.from ?? null;
        if (message.from !== this.you?.conn && applies(this.lead)) {
          this.emit("viewport", message.data);
        }
        return;
      case "annotation.created":
        this.bookActions(this.annotations.remoteCreated(message.data, clientId));
        return;
      case "annotation.updated":
        this.bookActions(this.annotations.remoteUpdated(message.data, clientId));
        return;
      case "annotation.deleted":
        this.bookActions(this.annotations.remoteDeleted(message.data.annotation, clientId));
        return;
      case "chat":
        if (!this.chat.some((entry) => entry.id === message.data.id)) {
          this.chat.push(message.data);
          this.chat.sort((a, b) => a.id - b.id);
        }
        this.emit("chat");
        return;
      case "room.closed":
        this.setStatus("closed");
        return;
    }
  }

  private onError(id: string | undefined, data: { code: string; message: string; [extra: string]: unknown }): void {
    const refused = this.settle(id);
    if (data.code === "unsupported_version") {
      this.setStatus("outdated");
      this.stop();
      return;
    }
    if (id !== undefined) {
      let current = null;
      if (data.code === "conflict" && data.annotation) {
        try {
          current = checkAnnotation(data.annotation);
        } catch {
          current = null;
        }
      }
      this.bookActions(this.annotations.refused(id, data.code, current));
    }
    if (refused?.message.type === "chat") {
      this.emit("chat");
    }
    if (data.code === "not_leader" && this.lead.asked) {
      this.leadEvent({ type: "askRefused" });
    }
    // A follower's late viewport after a hand-over is refused as not_leader: nothing to tell.
    if (data.code !== "not_leader" || refused?.message.type === "leader.grant") {
      this.emit("problem", data.code, data.message);
    }
  }

  private bookActions(actions: BookAction[]): void {
    const local: BookAction[] = [];
    for (const action of actions) {
      if (action.kind === "send") {
        this.send(action.type, action.data as never, action.id);
      } else {
        local.push(action);
      }
    }
    if (local.length > 0) {
      this.emit("annotations", local);
    }
  }

  private leadEvent(event: LeadEvent): void {
    const before = this.lead;
    const { state, effects } = leadStep(this.lead, event);
    this.lead = state;
    for (const effect of effects) {
      switch (effect.kind) {
        case "sendMode":
          this.send("mode", { mode: effect.mode });
          break;
        case "sendLeaderRequest":
          if (this.joined) {
            this.write(clientMessage("leader.request", {}));
          }
          break;
        case "sendGrant":
          this.send("leader.grant", { to: effect.to });
          break;
        case "applyLatest":
          // Only the current leader's view: a new leader's arrives as soon as they lead.
          if (this.latestViewport && this.latestFrom !== null && this.latestFrom === this.lead.leader) {
            this.emit("viewport", this.latestViewport);
          }
          break;
      }
    }
    if (state !== before) {
      this.emit("people");
    }
  }

  // --- What the page does ------------------------------------------------------------------------

  /** The leader's viewport changed (already coalesced by the caller). Returns false when not sent. */
  sendViewport(viewport: Viewport): boolean {
    if (!this.joined || !this.leading) {
      return false;
    }
    const clean = sanitizeViewport(viewport);
    if (viewportProblem(clean) !== null) {
      return false;
    }
    this.latestViewport = clean;
    this.latestFrom = this.you?.conn ?? null;
    return this.write(clientMessage("viewport", clean, this.ids.next()));
  }

  sendPointer(data: PointerData): void {
    if (this.joined) {
      this.write(clientMessage("pointer", data));
    }
  }

  sendChat(text: string): boolean {
    const clean = text.trim().slice(0, MAX_CHAT);
    if (!clean) {
      return false;
    }
    this.send("chat", { text: clean });
    this.emit("chat");
    return true;
  }

  annotationCreated(uid: string, fields: AnnotationFields): void {
    const clean = sanitizeAnnotation(fields);
    if (clean) {
      this.bookActions(this.annotations.localCreated(uid, clean));
    }
  }

  annotationModified(uid: string, fields: AnnotationFields): void {
    const clean = sanitizeAnnotation(fields);
    if (clean) {
      this.bookActions(this.annotations.localModified(uid, clean));
    }
  }

  annotationRemoved(uid: string): void {
    this.bookActions(this.annotations.localRemoved(uid));
  }

  setMode(mode: Mode): void {
    this.leadEvent({ type: "setMode", mode });
  }

  /** The user scrolled or changed the window while following: they look on their own now. */
  localChange(): void {
    this.leadEvent({ type: "localChange" });
  }

  askLead(): void {
    this.leadEvent({ type: "askLead" });
  }

  grantLead(to: string): void {
    this.leadEvent({ type: "grant", to });
  }

  dismissRequest(conn: string): void {
    this.leadEvent({ type: "dismiss", conn });
  }

  /** People in the room, one entry per user (several tabs count once), in order of arrival. */
  people(): { user: number; name: string; colour: string; conns: string[]; participant: Participant }[] {
    const byUser = new Map<number, { user: number; name: string; colour: string; conns: string[]; participant: Participant }>();
    const sorted = [...this.participants.values()].sort((a, b) => a.joined_at - b.joined_at);
    for (const participant of sorted) {
      const entry = byUser.get(participant.user);
      if (entry) {
        entry.conns.push(participant.conn);
        if (participant.conn === this.lead.leader) {
          entry.participant = participant;
        }
      } else {
        byUser.set(participant.user, {
          user: participant.user,
          name: participant.name,
          colour: participant.colour,
          conns: [participant.conn],
          participant,
        });
      }
    }
    return [...byUser.values()];
  }

  participant(conn: string | null): Participant | undefined {
    return conn ? this.participants.get(conn) : undefined;
  }
}
