import { afterEach, describe, expect, it } from "vitest";

import { RoomApi } from "../src/coreading/rooms";

const STUDY = "1.2.840.5";
const CONSULTATION = "0b6e4f2a-1111-4c1b-9a76-0d3f8a8f2c11";

function answering(status: number, body: unknown, calls: { url: string; init?: RequestInit }[]) {
  return async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  };
}

describe("the study's rooms", () => {
  afterEach(() => {
    delete (globalThis as { document?: unknown }).document;
  });

  it("lists the rooms to join and the consultation rooms nobody opened yet", async () => {
    const offer = { consultation: CONSULTATION, title: "판독 의뢰: 밝은내과의원 → 동구보건소", status: "requested", requested_at: "", open: `/api/coreading/consultations/${CONSULTATION}/room/` };
    const calls: { url: string }[] = [];
    const api = new RoomApi("/api/coreading", answering(200, { rooms: [], openable: [offer] }, calls));
    expect(await api.rooms(STUDY)).toEqual({ rooms: [], openable: [offer] });
    expect(calls[0].url).toBe(`/api/coreading/studies/${STUDY}/rooms/`);
  });

  it("treats an answer without openable rooms (an older server) as none", async () => {
    const api = new RoomApi("/api/coreading", answering(200, { rooms: [] }, []));
    expect(await api.rooms(STUDY)).toEqual({ rooms: [], openable: [] });
  });

  it("opens a consultation's room with a POST carrying the CSRF token", async () => {
    (globalThis as { document?: unknown }).document = { cookie: "csrftoken=tok123; other=1" };
    const calls: { url: string; init?: RequestInit }[] = [];
    const room = { id: "r1", study: STUDY, kind: "consultation", websocket: "/ws/coreading/r1/" };
    const api = new RoomApi("/api/coreading", answering(201, room, calls));
    expect((await api.openConsultation(CONSULTATION)).id).toBe("r1");
    expect(calls[0].url).toBe(`/api/coreading/consultations/${CONSULTATION}/room/`);
    expect(calls[0].init?.method).toBe("POST");
    expect((calls[0].init?.headers as Record<string, string>)["X-CSRFToken"]).toBe("tok123");
  });
});
