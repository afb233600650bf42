import { describe, expect, it } from "vitest";

import {
  byteLength,
  clientMessage,
  encode,
  isSequenced,
  MessageIds,
  normalizeRotation,
  parseServerMessage,
  ProtocolViolation,
  sanitizeAnnotation,
  sanitizeViewport,
  viewportProblem,
  type Viewport,
} from "../src/coreading/protocol";

const SERIES = "1.2.840.113619.2.1.1.1";
const cell = {
  series: SERIES,
  image: 41,
  window: { center: -600, width: 1500 },
  zoom: 1.6,
  pan: [12.5, -30] as [number, number],
  rotation: 90,
  flip: { h: false, v: true },
  invert: false,
};

describe("client messages", () => {
  it("carry the version, the type, the id and the data, as in docs/coreading.md", () => {
    const message = clientMessage("chat", { text: "우하엽 결절 보이세요?" }, "k3v9-17");
    expect(JSON.parse(encode(message))).toEqual({ v: 1, type: "chat", id: "k3v9-17", data: { text: "우하엽 결절 보이세요?" } });
  });

  it("refuse to build a kind that needs an id without one", () => {
    expect(() => clientMessage("viewport", { layout: "1x1", active: 0, cells: [cell] })).toThrow(/needs an id/);
    expect(() => clientMessage("chat", { text: "x" }, "bad id with spaces")).toThrow(/bad client message id/);
    expect(clientMessage("pointer", { hidden: true })).toEqual({ v: 1, type: "pointer", data: { hidden: true } });
  });

  it("get ids that the server accepts and that never repeat on a page", () => {
    const ids = new MessageIds(() => 0.5);
    const seen = new Set(Array.from({ length: 1000 }, () => ids.next()));
    expect(seen.size).toBe(1000);
    for (const id of seen) {
      expect(id).toMatch(/^[A-Za-z0-9_.:-]{1,64}$/);
    }
    expect(new MessageIds(() => 0).prefix).not.toBe(new MessageIds(() => 0.99).prefix);
  });

  it("count Korean text in UTF-8 bytes, as the server's size limit does", () => {
    expect(byteLength("판독")).toBe(6);
    expect(byteLength("ab")).toBe(2);
  });
});

describe("outgoing viewports", () => {
  it("pass the server's checks as they are", () => {
    const viewport: Viewport = { layout: "1x1", active: 0, cells: [cell] };
    expect(viewportProblem(sanitizeViewport(viewport))).toBeNull();
  });

  it("are brought within the server's limits: zoom 0.01–100, rotation 0–360, finite numbers", () => {
    const wild: Viewport = {
      layout: "1x2",
      active: 7,
      cells: [
        { ...cell, zoom: 1e9, rotation: -90, pan: [Number.NaN, 3.14159265], image: -3 },
        { ...cell, zoom: 0, rotation: 450, window: { center: 40, width: 0 } },
      ],
    };
    const clean = sanitizeViewport(wild);
    expect(clean.active).toBe(1);
    expect(clean.cells[0]).toMatchObject({ zoom: 100, rotation: 270, pan: [0, 3.142], image: 0 });
    expect(clean.cells[1]).toMatchObject({ zoom: 0.01, rotation: 90, window: null });
    expect(viewportProblem(clean)).toBeNull();
  });

  it("are refused when the cells do not match the layout or a series is missing", () => {
    expect(viewportProblem({ layout: "2x2", active: 0, cells: [cell] })).toBe("cells");
    expect(viewportProblem({ layout: "1x1", active: 0, cells: [{ ...cell, series: null }] })).toBe("cells[0].series");
  });

  it("normalise rotations to [0, 360)", () => {
    expect([0, 90, 360, 450, -90, -360].map(normalizeRotation)).toEqual([0, 90, 0, 90, 270, 0]);
  });
});

describe("outgoing annotations", () => {
  const length = { kind: "length" as const, series: SERIES, instance: `${SERIES}.41`, frame: 0, points: [[120.5, 88], [164, 97.25]] as [number, number][], text: " 8 mm " };

  it("keep valid fields, trimmed and rounded to 1/1000 pixel", () => {
    const clean = sanitizeAnnotation({ ...length, points: [[120.50004, 88], [164, 97.2501]] });
    expect(clean).toEqual({ ...length, text: "8 mm", points: [[120.5, 88], [164, 97.25]] });
  });

  it("are not sent with the wrong number of points or bad UIDs", () => {
    expect(sanitizeAnnotation({ ...length, kind: "angle" })).toBeNull();
    expect(sanitizeAnnotation({ ...length, series: "not-a-uid" })).toBeNull();
    expect(sanitizeAnnotation({ ...length, points: [[Number.POSITIVE_INFINITY, 0], [1, 1]] })).toBeNull();
  });
});

describe("server messages", () => {
  const snapshot = {
    v: 1,
    type: "snapshot",
    data: {
      epoch: "k1f9q2",
      seq: 57,
      room: { id: "5f0c", kind: "consultation", title: "", study: "1.3.6", consultation: "0b6e" },
      you: { conn: "c9f2a1", user: 3, colour: "#e6194b", mode: "follow" },
      participants: [
        {
          conn: "c9f2a1",
          user: 3,
          name: "김영상",
          institution: { code: "10000001", name: "한빛시 동구보건소", name_en: "" },
          role: "reader",
          colour: "#e6194b",
          mode: "follow",
          joined_at: 1777685460120,
        },
      ],
      leader: "c9f2a1",
      viewport: null,
      annotations: [],
      chat: [{ id: 12, text: "안녕하세요", author: { user: 3, name: "김영상" }, colour: "#e6194b", at: "2026-05-02T10:33:00+09:00" }],
      limits: { max_message_bytes: 16384, pointer_per_second: 30, messages_per_second: 50, chat_history: 50 },
    },
  };

  it("parse the documented snapshot", () => {
    const message = parseServerMessage(JSON.stringify(snapshot));
    expect(message.type).toBe("snapshot");
    if (message.type === "snapshot") {
      expect(message.data.you.conn).toBe("c9f2a1");
      expect(message.data.participants[0].institution?.name).toBe("한빛시 동구보건소");
      expect(message.data.chat[0].text).toBe("안녕하세요");
    }
  });

  it("keep seq, from, user and id of sequenced messages", () => {
    const text = JSON.stringify({ v: 1, seq: 58, type: "chat", from: "c9f2a1", user: 3, id: "k3v9-17", data: snapshot.data.chat[0] });
    const message = parseServerMessage(text);
    expect(isSequenced(message)).toBe(true);
    expect(message).toMatchObject({ seq: 58, from: "c9f2a1", user: 3, id: "k3v9-17" });
  });

  it("parse a documented viewport with defaults for omitted fields", () => {
    const message = parseServerMessage(
      JSON.stringify({ v: 1, seq: 3, type: "viewport", data: { layout: "1x1", active: 0, cells: [{ series: SERIES, image: 4, window: null }] } }),
    );
    expect(message.data).toEqual({
      layout: "1x1",
      active: 0,
      cells: [{ series: SERIES, image: 4, window: null, zoom: 1, pan: [0, 0], rotation: 0, flip: { h: false, v: false }, invert: false }],
    });
  });

  it("refuse what the client cannot use", () => {
    const bad = [
      "not json",
      "[]",
      JSON.stringify({ v: 2, type: "pong", data: {} }),
      JSON.stringify({ v: 1, type: "teleport", data: {} }),
      JSON.stringify({ v: 1, type: "chat", data: snapshot.data.chat[0] }), // sequenced without seq
      JSON.stringify({ v: 1, seq: 4, type: "viewport", data: { layout: "2x2", cells: [] } }),
      JSON.stringify({ v: 1, seq: 5, type: "annotation.created", data: { id: "x", kind: "angle", points: [[0, 0]] } }),
      JSON.stringify({ v: 1, type: "pointer", data: { series: "x", image: 1, x: 1, y: 1 } }),
    ];
    for (const text of bad) {
      expect(() => parseServerMessage(text), text).toThrow(ProtocolViolation);
    }
  });

  it("accept errors, acks and pointers without seq", () => {
    expect(parseServerMessage(JSON.stringify({ v: 1, type: "ack", id: "a-1", data: { seq: 57, duplicate: true } }))).toMatchObject({
      type: "ack",
      id: "a-1",
      data: { seq: 57, duplicate: true },
    });
    expect(parseServerMessage(JSON.stringify({ v: 1, type: "error", id: "a-2", data: { code: "not_leader", message: "…" } })).data).toMatchObject({
      code: "not_leader",
    });
    expect(
      parseServerMessage(JSON.stringify({ v: 1, type: "pointer", from: "c1", user: 4, data: { series: SERIES, image: 12, x: 211.5, y: 140.25 } })),
    ).toMatchObject({ from: "c1", data: { image: 12, x: 211.5 } });
  });
});
