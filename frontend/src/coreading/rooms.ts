// The co-reading HTTP API (docs/coreading.md, "HTTP API"): list, open and fetch
// rooms, invite people. Same origin, session cookie, CSRF header on POST.

import { csrfToken, type Fetch } from "../dicomweb";
import type { Institution } from "./protocol";

export interface RoomMember {
  user: number;
  name: string;
  institution: Institution | null;
  colour: string;
}

export interface Room {
  id: string;
  kind: "consultation" | "adhoc" | string;
  title: string;
  study: string;
  consultation: string | null;
  owner: { user: number; name: string } | null;
  created_at: string;
  closed_at: string | null;
  members: RoomMember[];
  can_manage: boolean;
  websocket: string;
  viewer: string;
}

/** A consultation's room that the user may open and nobody opened yet (docs/coreading.md, "openable"). */
export interface Openable {
  consultation: string;
  /** "Reading request: requester → target", in the user's language. */
  title: string;
  status: string;
  requested_at: string;
  /** Where to POST to open it (answers the room). */
  open: string;
}

export interface StudyRooms {
  rooms: Room[];
  openable: Openable[];
}

export class RoomError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "RoomError";
  }
}

const enc = encodeURIComponent;

export class RoomApi {
  constructor(
    private readonly root = "/api/coreading",
    private readonly fetchImpl: Fetch = (input, init) => fetch(input, init),
  ) {}

  private async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = csrfToken(document.cookie) ?? "";
    }
    const response = await this.fetchImpl(`${this.root}${path}`, {
      method,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get("Content-Type") ?? "";
    const payload: unknown = type.includes("json") ? await response.json() : null;
    if (!response.ok || (response.redirected && !type.includes("json"))) {
      const message = payload && typeof payload === "object" && "error" in payload ? String((payload as { error: unknown }).error) : `HTTP ${response.status}`;
      throw new RoomError(response.redirected ? 401 : response.status, message);
    }
    return payload as T;
  }

  async list(study: string): Promise<Room[]> {
    return (await this.rooms(study)).rooms;
  }

  /** The study's rooms I may join and the consultation rooms I may open. */
  async rooms(study: string): Promise<StudyRooms> {
    const answer = await this.call<Partial<StudyRooms>>("GET", `/studies/${enc(study)}/rooms/`);
    return { rooms: answer.rooms ?? [], openable: answer.openable ?? [] };
  }

  /** Get or open a consultation's room. */
  openConsultation(consultation: string): Promise<Room> {
    return this.call<Room>("POST", `/consultations/${enc(consultation)}/room/`);
  }

  open(study: string, title = ""): Promise<Room> {
    return this.call<Room>("POST", `/studies/${enc(study)}/rooms/`, title ? { title } : {});
  }

  get(id: string): Promise<Room> {
    return this.call<Room>("GET", `/rooms/${enc(id)}/`);
  }

  async invite(id: string, user: string): Promise<RoomMember> {
    const answer = await this.call<{ member: RoomMember }>("POST", `/rooms/${enc(id)}/participants/`, { user });
    return answer.member;
  }
}

/** ws:// or wss:// for a same-origin websocket path. */
export function websocketUrl(path: string, location: { protocol: string; host: string }): string {
  if (/^wss?:\/\//.test(path)) {
    return path;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path.startsWith("/") ? path : `/${path}`}`;
}
