import { describe, expect, it } from "vitest";

import { closeAction, CoreadingClient, GAP_WAIT_MS } from "../src/coreading/client";
import type { Viewport } from "../src/coreading/protocol";
import { FakeClock, FakeSocket } from "./coreading.fakes";

const SERIES = "1.2.840.1";
const ME = { conn: "mine1", user: 3, colour: "#e6194b", mode: "follow" };
const person = (conn: string, user: number, name: string, joined = 1) => ({
  conn,
  user,
  name,
  institution: { code: "31200101", name: "밝은내과의원", name_en: "" },
  role: "physician",
  colour: "#3cb44b",
  mode: "follow",
  joined_at: joined,
});
const viewport = (image: number): Viewport => ({
  layout: "1x1",
  active: 0,
  cells: [{ series: SERIES, image, window: { center: 40, width: 400 }, zoom: 1, pan: [0, 0], rotation: 0, flip: { h: false, v: false }, invert: false }],
});

function snapshot(seq: number, overrides: Record<string, unknown> = {}) {
  return {
    v: 1,
    type: "snapshot",
    data: {
      epoch: "e1",
      seq,
      room: { id: "room1", kind: "consultation", title: "", study: "1.2.3", consultation: null },
      you: ME,
      participants: [person("lead1", 8, "이의사", 0), { ...person("mine1", 3, "김영상", 2) }],
      leader: "lead1",
      viewport: viewport(5),
      annotations: [],
      chat: [],
      limits: {},
      ...overrides,
    },
  };
}

function setup() {
  const clock = new FakeClock();
  const sockets: FakeSocket[] = [];
  const client = new CoreadingClient({
    url: "/ws/coreading/room1/",
    socket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    clock,
    random: () => 0.5,
  });
  const seen = { viewports: [] as Viewport[], statuses: [] as string[], pointers: [] as string[], problems: [] as string[] };
  client.listen({
    viewport: (v) => seen.viewports.push(v),
    status: (s) => seen.statuses.push(s),
    pointer: (from) => seen.pointers.push(from),
    problem: (code) => seen.problems.push(code),
  });
  client.connect();
  return { client, clock, sockets, seen, socket: () => sockets[sockets.length - 1] };
}

function joined(seq = 10, overrides: Record<string, unknown> = {}) {
  const world = setup();
  world.socket().open();
  world.socket().deliver(snapshot(seq, overrides));
  return world;
}

const chat = (seq: number, id: number, extra: Record<string, unknown> = {}) => ({
  v: 1,
  seq,
  type: "chat",
  from: "lead1",
  user: 8,
  id: `x-${id}`,
  data: { id, text: `메시지 ${id}`, author: { user: 8, name: "이의사" }, colour: "#3cb44b", at: "" },
  ...extra,
});

describe("joining a room", () => {
  it("sends join first and goes live with the snapshot", () => {
    const { client, socket, seen } = joined();
    expect(socket().url).toBe("/ws/coreading/room1/");
    expect(socket().sent[0]).toEqual({ v: 1, type: "join", data: { mode: "follow" } });
    expect(client.status).toBe("live");
    expect(client.lastSeq).toBe(10);
    expect(client.people().map((p) => p.name)).toEqual(["이의사", "김영상"]);
    // Following: the leader's viewport from the snapshot is applied at once.
    expect(seen.viewports).toEqual([viewport(5)]);
  });
});

describe("ordering", () => {
  it("applies messages in seq order and each once", () => {
    const { client, socket } = joined();
    socket().deliver(chat(12, 2));
    expect(client.chat).toEqual([]);
    socket().deliver(chat(11, 1));
    expect(client.chat.map((m) => m.id)).toEqual([1, 2]);
    socket().deliver(chat(11, 1));
    socket().deliver(chat(9, 0));
    expect(client.chat.map((m) => m.id)).toEqual([1, 2]);
    expect(client.lastSeq).toBe(12);
  });

  it("asks for the missing messages when a gap stays open for 500 ms", () => {
    const { clock, socket } = joined();
    socket().deliver(chat(13, 3));
    clock.advance(GAP_WAIT_MS - 1);
    expect(socket().types()).not.toContain("sync");
    clock.advance(1);
    expect(socket().last("sync")).toEqual({ v: 1, type: "sync", data: { seq: 10 } });
  });

  it("does not ask when the gap fills in time", () => {
    const { clock, socket } = joined();
    socket().deliver(chat(12, 2));
    clock.advance(200);
    socket().deliver(chat(11, 1));
    clock.advance(1000);
    expect(socket().types()).not.toContain("sync");
  });

  it("follows the leader's viewports, but not after the user looked on their own until they return", () => {
    const { client, socket, seen } = joined();
    socket().deliver({ v: 1, seq: 11, type: "viewport", from: "lead1", user: 8, id: "v-1", data: viewport(6) });
    expect(seen.viewports.at(-1)).toEqual(viewport(6));
    client.localChange();
    expect(socket().last("mode")).toMatchObject({ data: { mode: "free" } });
    socket().deliver({ v: 1, seq: 12, type: "viewport", from: "lead1", user: 8, id: "v-2", data: viewport(7) });
    expect(seen.viewports.at(-1)).toEqual(viewport(6));
    client.setMode("follow");
    expect(seen.viewports.at(-1)).toEqual(viewport(7));
  });

  it("copies only the current leader's view: a stale one from before a restart stays unapplied", () => {
    const { client, socket, seen } = joined(10, { leader: null });
    expect(seen.viewports).toEqual([]);
    // Someone else claims the lead: their view is not known yet, so nothing is copied…
    socket().deliver({ v: 1, seq: 11, type: "leader.changed", data: { leader: "lead1", previous: null, reason: "claimed" } });
    expect(seen.viewports).toEqual([]);
    // …until they send it.
    socket().deliver({ v: 1, seq: 12, type: "viewport", from: "lead1", user: 8, id: "v-9", data: viewport(9) });
    expect(seen.viewports).toEqual([viewport(9)]);
    expect(client.latestViewport).toEqual(viewport(9));
  });

  it("shows others' pointers, not its own", () => {
    const { socket, seen } = joined();
    socket().deliver({ v: 1, type: "pointer", from: "lead1", user: 8, data: { series: SERIES, image: 3, x: 10, y: 20 } });
    socket().deliver({ v: 1, type: "pointer", from: "mine1", user: 3, data: { hidden: true } });
    expect(seen.pointers).toEqual(["lead1"]);
  });
});

describe("leading", () => {
  it("sends viewports only while leading", () => {
    const { client, socket } = joined();
    expect(client.sendViewport(viewport(1))).toBe(false);
    socket().deliver({ v: 1, seq: 11, type: "leader.changed", data: { leader: "mine1", previous: "lead1", reason: "granted" } });
    expect(client.leading).toBe(true);
    expect(client.sendViewport(viewport(2))).toBe(true);
    expect(socket().last("viewport")).toMatchObject({ data: viewport(2) });
    expect(typeof socket().last("viewport")?.id).toBe("string");
  });

  it("asks for the lead and hands it over on request", () => {
    const { client, socket } = joined();
    client.askLead();
    expect(socket().last("leader.request")).toEqual({ v: 1, type: "leader.request", data: {} });
    socket().deliver({ v: 1, seq: 11, type: "leader.changed", data: { leader: "mine1", previous: "lead1", reason: "granted" } });
    socket().deliver({ v: 1, type: "leader.requested", data: { conn: "lead1" } });
    expect(client.lead.requests).toEqual(["lead1"]);
    client.grantLead("lead1");
    expect(socket().last("leader.grant")).toMatchObject({ data: { to: "lead1" } });
  });
});

describe("chat", () => {
  it("shows my message as pending until its echo comes back", () => {
    const { client, socket } = joined();
    client.sendChat("  우하엽 결절 보이세요?  ");
    const sent = socket().last("chat")!;
    expect(sent.data).toEqual({ text: "우하엽 결절 보이세요?" });
    expect(client.pendingChat()).toEqual([{ id: sent.id, text: "우하엽 결절 보이세요?" }]);
    socket().deliver({
      v: 1,
      seq: 11,
      type: "chat",
      from: "mine1",
      user: 3,
      id: sent.id,
      data: { id: 40, text: "우하엽 결절 보이세요?", author: { user: 3, name: "김영상" }, colour: "#e6194b", at: "" },
    });
    expect(client.pendingChat()).toEqual([]);
    expect(client.chat.map((m) => m.text)).toEqual(["우하엽 결절 보이세요?"]);
    expect(client.sendChat("   ")).toBe(false);
  });
});

describe("reconnecting", () => {
  it("reconnects with backoff, resumes from the last seq and resends what was never confirmed", () => {
    const { client, clock, sockets, socket, seen } = joined();
    socket().deliver(chat(11, 1));
    client.sendChat("끊기기 전에");
    const chatId = socket().last("chat")!.id;
    socket().drop(1006);
    expect(client.status).toBe("reconnecting");
    expect(seen.statuses).toContain("reconnecting");
    // Sent while disconnected: waits in the outbox.
    client.sendChat("끊긴 동안");
    clock.advance(370); // first retry: 0.5 s × (1 − 0.5 + 0.5 × 0.5) = 375 ms
    expect(sockets).toHaveLength(1);
    clock.advance(5);
    expect(sockets).toHaveLength(2);
    socket().open();
    expect(socket().sent[0]).toEqual({ v: 1, type: "join", data: { mode: "follow", resume: { epoch: "e1", seq: 11 } } });
    // The server replays what was missed, then says resumed.
    socket().deliver(chat(12, 2));
    socket().deliver({ v: 1, type: "resumed", data: { epoch: "e1", seq: 12, you: { ...ME, conn: "mine2" } } });
    expect(client.status).toBe("live");
    expect(client.you?.conn).toBe("mine2");
    const resent = socket().sent.filter((m) => m.type === "chat");
    expect(resent.map((m) => (m.data as { text: string }).text)).toEqual(["끊기기 전에", "끊긴 동안"]);
    expect(resent[0].id).toBe(chatId);
    // The server had applied the first already: an ack settles it.
    socket().deliver({ v: 1, type: "ack", id: chatId, data: { seq: 13, duplicate: true } });
    expect(client.pendingChat().map((m) => m.text)).toEqual(["끊긴 동안"]);
  });

  it("waits longer after each failed attempt, up to 10 s", () => {
    const { clock, sockets, socket } = joined();
    socket().drop(1006);
    const started: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const before = sockets.length;
      while (sockets.length === before) {
        clock.advance(5);
      }
      started.push(clock.now());
      socket().drop(1006);
    }
    const gaps = started.map((time, i) => time - (i === 0 ? 0 : started[i - 1]));
    expect(gaps.slice(1)).toEqual([750, 1500, 3000, 6000, 7500, 7500].map((ms) => Math.ceil(ms / 5) * 5));
  });

  it("takes a fresh snapshot when the server cannot resume", () => {
    const { client, clock, socket } = joined();
    socket().drop(1011);
    clock.advance(1000);
    socket().open();
    socket().deliver(snapshot(40, { epoch: "e2", chat: [chat(40, 9).data] }));
    expect(client.lastSeq).toBe(40);
    expect(client.chat.map((m) => m.id)).toEqual([9]);
    socket().drop(1006);
    clock.advance(1000);
    socket().open();
    expect(socket().sent[0]).toMatchObject({ data: { resume: { epoch: "e2", seq: 40 } } });
  });

  it("stops for good when access ended, the room closed or was never there", () => {
    for (const [code, status] of [
      [4403, "ended"],
      [4404, "notfound"],
      [4410, "closed"],
    ] as const) {
      const { client, clock, sockets, socket } = joined();
      socket().drop(code);
      clock.advance(60_000);
      expect(client.status).toBe(status);
      expect(sockets).toHaveLength(1);
    }
    expect(closeAction(4408)).toEqual({ reconnect: true });
    expect(closeAction(4503)).toEqual({ reconnect: true });
    expect(closeAction(1001)).toEqual({ reconnect: true });
  });

  it("drops a connection that went silent and reconnects", () => {
    const { clock, sockets, socket } = joined();
    clock.advance(20_000);
    expect(socket().types()).toContain("ping");
    clock.advance(40_000);
    expect(sockets[0].closedWith).toBe(4000);
    clock.advance(1000);
    expect(sockets).toHaveLength(2);
  });

  it("stops on a server of another protocol version", () => {
    const { client, socket } = joined();
    socket().deliver({ v: 1, type: "error", data: { code: "unsupported_version", message: "reload" } });
    expect(client.status).toBe("outdated");
  });
});

describe("annotations through the client", () => {
  it("creates, hears the echo, and resends a create after reconnecting", () => {
    const { client, clock, socket } = joined();
    const drawn: string[] = [];
    client.listen({ annotations: (actions) => drawn.push(...actions.map((a) => `${a.kind}:${"uid" in a ? a.uid : ""}`)) });
    client.annotationCreated("local-1", { kind: "length", series: SERIES, instance: `${SERIES}.1`, frame: 0, points: [[1, 1], [5, 5]], text: "" });
    const create = socket().last("annotation.create")!;
    socket().drop(1006);
    clock.advance(1000);
    socket().open();
    socket().deliver({ v: 1, type: "resumed", data: { epoch: "e1", seq: 10, you: ME } });
    expect(socket().last("annotation.create")?.id).toBe(create.id);
    socket().deliver({
      v: 1,
      seq: 11,
      type: "annotation.created",
      from: "mine1",
      user: 3,
      id: create.id,
      data: {
        id: "0d0f7c1e-0000-4000-8000-00000000000a",
        kind: "length",
        series: SERIES,
        instance: `${SERIES}.1`,
        frame: 0,
        points: [[1, 1], [5, 5]],
        text: "",
        version: 1,
        author: { user: 3, name: "김영상" },
        colour: "#e6194b",
      },
    });
    expect(drawn).toEqual(["confirm:local-1"]);
    expect(client.annotations.serverIdOf("local-1")).toBe("0d0f7c1e-0000-4000-8000-00000000000a");
  });
});
