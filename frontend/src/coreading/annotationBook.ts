// Bookkeeping for shared annotations: which Cornerstone annotation is which
// server annotation, which version each is at, and what to send when the user
// draws, moves or deletes one while earlier messages are still on their way.
//
// Rules (docs/coreading.md): the server numbers versions; an update names the
// version it changes and is refused with `conflict` when that is not the
// current one. So each annotation has at most one update in flight, and later
// edits wait for its echo and go out with the new version. On a conflict the
// server's copy wins (someone else moved it meanwhile). Remote annotations use
// the server id as their Cornerstone annotationUID; mine keep the uid
// Cornerstone gave them.

import { samePoints } from "./annotations";
import type { AnnotationFields, ClientData, Point, ServerAnnotation } from "./protocol";

type Change = { points: Point[]; text: string };

export type BookAction =
  | { kind: "send"; type: "annotation.create"; id: string; data: ClientData["annotation.create"] }
  | { kind: "send"; type: "annotation.update"; id: string; data: ClientData["annotation.update"] }
  | { kind: "send"; type: "annotation.delete"; id: string; data: ClientData["annotation.delete"] }
  /** Draw a server annotation this page does not have yet (uid = its server id). */
  | { kind: "show"; uid: string; annotation: ServerAnnotation }
  /** Move/relabel the page's copy to the server's. */
  | { kind: "refresh"; uid: string; annotation: ServerAnnotation }
  /** My own annotation is confirmed: colour and attribute it. */
  | { kind: "confirm"; uid: string; annotation: ServerAnnotation }
  /** Take it off the page. */
  | { kind: "remove"; uid: string };

interface Known {
  uid: string;
  record: ServerAnnotation;
}

export class AnnotationBook {
  private readonly known = new Map<string, Known>();
  private readonly serverOf = new Map<string, string>();
  /** annotation.create in flight: client id → local uid and what was sent. */
  private readonly creating = new Map<string, { uid: string; fields: AnnotationFields }>();
  /** Edits and deletes made while the create was in flight, by local uid. */
  private readonly afterCreate = new Map<string, { change?: Change; remove?: boolean }>();
  /** annotation.update in flight, by server id → client id. */
  private readonly updating = new Map<string, string>();
  /** The latest edit waiting for the update in flight, by server id. */
  private readonly queued = new Map<string, Change>();
  /** What each of my client ids was about, for errors and acks. */
  private readonly sent = new Map<string, { type: string; uid: string; server?: string }>();

  constructor(private readonly nextId: () => string) {}

  serverIdOf(uid: string): string | undefined {
    return this.serverOf.get(uid);
  }

  record(serverId: string): ServerAnnotation | undefined {
    return this.known.get(serverId)?.record;
  }

  /** The record behind a page annotation (mine or remote), once the server has it. */
  recordForUid(uid: string): ServerAnnotation | undefined {
    const server = this.serverOf.get(uid);
    return server ? this.known.get(server)?.record : undefined;
  }

  /** Whether *uid* is on its way to the server (a create not yet echoed). */
  isPending(uid: string): boolean {
    return [...this.creating.values()].some((entry) => entry.uid === uid);
  }

  all(): ServerAnnotation[] {
    return [...this.known.values()].map((entry) => entry.record);
  }

  // --- What the user did ---------------------------------------------------------------

  localCreated(uid: string, fields: AnnotationFields): BookAction[] {
    if (this.serverOf.has(uid) || this.isPending(uid)) {
      return this.localModified(uid, fields);
    }
    const id = this.nextId();
    this.creating.set(id, { uid, fields });
    this.sent.set(id, { type: "annotation.create", uid });
    return [{ kind: "send", type: "annotation.create", id, data: fields }];
  }

  localModified(uid: string, fields: AnnotationFields): BookAction[] {
    const change = { points: fields.points, text: fields.text };
    const server = this.serverOf.get(uid);
    if (!server) {
      if (this.isPending(uid)) {
        this.afterCreate.set(uid, { ...this.afterCreate.get(uid), change });
      }
      return [];
    }
    const current = this.known.get(server)?.record;
    if (!current) {
      return [];
    }
    if (this.updating.has(server)) {
      this.queued.set(server, change);
      return [];
    }
    if (samePoints(current.points, change.points) && current.text === change.text) {
      return [];
    }
    return [this.update(uid, server, current.version, change)];
  }

  localRemoved(uid: string): BookAction[] {
    const server = this.serverOf.get(uid);
    if (!server) {
      if (this.isPending(uid)) {
        this.afterCreate.set(uid, { remove: true });
      }
      return [];
    }
    this.queued.delete(server);
    const id = this.nextId();
    this.sent.set(id, { type: "annotation.delete", uid, server });
    return [{ kind: "send", type: "annotation.delete", id, data: { annotation: server } }];
  }

  private update(uid: string, server: string, version: number, change: Change): BookAction {
    const id = this.nextId();
    this.updating.set(server, id);
    this.sent.set(id, { type: "annotation.update", uid, server });
    return { kind: "send", type: "annotation.update", id, data: { annotation: server, version, points: change.points, text: change.text } };
  }

  // --- What the server said --------------------------------------------------------------

  /** `annotation.created`; *clientId* is the envelope's id when the message is my own echo. */
  remoteCreated(annotation: ServerAnnotation, clientId: string | null): BookAction[] {
    const mine = clientId !== null ? this.creating.get(clientId) : undefined;
    if (mine && clientId !== null) {
      this.creating.delete(clientId);
      this.sent.delete(clientId);
      this.remember(mine.uid, annotation);
      const actions: BookAction[] = [{ kind: "confirm", uid: mine.uid, annotation }];
      const later = this.afterCreate.get(mine.uid);
      this.afterCreate.delete(mine.uid);
      if (later?.remove) {
        actions.push(...this.localRemoved(mine.uid));
      } else if (later?.change) {
        actions.push(...this.localModified(mine.uid, { ...mine.fields, ...later.change }));
      }
      return actions;
    }
    const existing = this.known.get(annotation.id);
    if (existing) {
      return this.remoteUpdated(annotation, null);
    }
    this.remember(annotation.id, annotation);
    return [{ kind: "show", uid: annotation.id, annotation }];
  }

  /** `annotation.updated` (or a `conflict` error's current copy). */
  remoteUpdated(annotation: ServerAnnotation, clientId: string | null): BookAction[] {
    const existing = this.known.get(annotation.id);
    if (!existing) {
      return this.remoteCreated(annotation, null);
    }
    const actions: BookAction[] = [];
    const myUpdate = clientId !== null && this.updating.get(annotation.id) === clientId;
    if (annotation.version > existing.record.version) {
      existing.record = annotation;
      if (!myUpdate) {
        actions.push({ kind: "refresh", uid: existing.uid, annotation });
      }
    }
    if (myUpdate && clientId !== null) {
      this.updating.delete(annotation.id);
      this.sent.delete(clientId);
      actions.push(...this.sendQueued(existing));
    }
    return actions;
  }

  remoteDeleted(serverId: string, clientId: string | null = null): BookAction[] {
    if (clientId !== null) {
      this.sent.delete(clientId);
    }
    const existing = this.known.get(serverId);
    if (!existing) {
      return [];
    }
    this.forget(serverId);
    return [{ kind: "remove", uid: existing.uid }];
  }

  private sendQueued(entry: Known): BookAction[] {
    const change = this.queued.get(entry.record.id);
    this.queued.delete(entry.record.id);
    if (!change || (samePoints(change.points, entry.record.points) && change.text === entry.record.text)) {
      return [];
    }
    return [this.update(entry.uid, entry.record.id, entry.record.version, change)];
  }

  /**
   * The server refused one of my messages (`error` with its id). A conflict
   * brings the current copy: it wins. A create that failed for good leaves my
   * drawing local only; an update or delete of something gone removes it.
   */
  refused(clientId: string, code: string, current: ServerAnnotation | null): BookAction[] {
    const what = this.sent.get(clientId);
    if (!what) {
      return [];
    }
    this.sent.delete(clientId);
    if (what.type === "annotation.create") {
      this.creating.delete(clientId);
      this.afterCreate.delete(what.uid);
      return [];
    }
    if (!what.server) {
      return [];
    }
    if (this.updating.get(what.server) === clientId) {
      this.updating.delete(what.server);
    }
    this.queued.delete(what.server);
    if (code === "conflict" && current) {
      const entry = this.known.get(what.server);
      if (entry) {
        entry.record = current;
        return [{ kind: "refresh", uid: entry.uid, annotation: current }];
      }
    }
    if (code === "not_found") {
      return this.remoteDeleted(what.server);
    }
    return [];
  }

  /**
   * The server had already applied a resend (`ack` duplicate). For a create
   * that means the annotation reached the room but its echo never reached me:
   * the snapshot brought it as someone else's, so my page copy goes.
   */
  acknowledged(clientId: string): BookAction[] {
    const what = this.sent.get(clientId);
    this.sent.delete(clientId);
    if (!what) {
      return [];
    }
    if (what.type === "annotation.create") {
      this.creating.delete(clientId);
      this.afterCreate.delete(what.uid);
      return [{ kind: "remove", uid: what.uid }];
    }
    if (what.server && this.updating.get(what.server) === clientId) {
      this.updating.delete(what.server);
      const entry = this.known.get(what.server);
      return entry ? this.sendQueued(entry) : [];
    }
    return [];
  }

  /** A snapshot replaces what the server holds; creates still in flight stay (their resend decides). */
  snapshot(annotations: ServerAnnotation[]): BookAction[] {
    const actions: BookAction[] = [];
    const incoming = new Map(annotations.map((annotation) => [annotation.id, annotation]));
    for (const [serverId, entry] of [...this.known]) {
      if (!incoming.has(serverId)) {
        this.forget(serverId);
        actions.push({ kind: "remove", uid: entry.uid });
      }
    }
    for (const annotation of annotations) {
      const entry = this.known.get(annotation.id);
      if (!entry) {
        this.remember(annotation.id, annotation);
        actions.push({ kind: "show", uid: annotation.id, annotation });
      } else if (annotation.version !== entry.record.version || !samePoints(annotation.points, entry.record.points)) {
        entry.record = annotation;
        actions.push({ kind: "refresh", uid: entry.uid, annotation });
      } else {
        entry.record = annotation;
      }
    }
    return actions;
  }

  private remember(uid: string, annotation: ServerAnnotation): void {
    this.known.set(annotation.id, { uid, record: annotation });
    this.serverOf.set(uid, annotation.id);
  }

  private forget(serverId: string): void {
    const entry = this.known.get(serverId);
    this.known.delete(serverId);
    this.updating.delete(serverId);
    this.queued.delete(serverId);
    if (entry) {
      this.serverOf.delete(entry.uid);
    }
  }
}
