import { describe, expect, it } from "vitest";

import { applies, initialLead, isLeader, leadStep, leadUi, type LeadEvent, type LeadState } from "../src/coreading/lead";

function run(events: LeadEvent[], from: LeadState = initialLead) {
  let state = from;
  const effects = [];
  for (const event of events) {
    const step = leadStep(state, event);
    state = step.state;
    effects.push(...step.effects);
  }
  return { state, effects };
}

const follower = run([{ type: "joined", me: "me", leader: "lee", mode: "follow" }]).state;
const leader = run([{ type: "joined", me: "me", leader: "me", mode: "follow" }]).state;

describe("follow and free", () => {
  it("starts following the leader and copies the latest viewport on joining", () => {
    const { state, effects } = run([{ type: "joined", me: "me", leader: "lee", mode: "follow" }]);
    expect(applies(state)).toBe(true);
    expect(effects).toEqual([{ kind: "applyLatest" }]);
  });

  it("switches a follower who scrolls or changes the window to free, and tells the others", () => {
    const { state, effects } = run([{ type: "localChange" }], follower);
    expect(state.mode).toBe("free");
    expect(applies(state)).toBe(false);
    expect(effects).toEqual([{ kind: "sendMode", mode: "free" }]);
    // Further local changes change nothing more.
    expect(run([{ type: "localChange" }], state).effects).toEqual([]);
  });

  it("returns to follow on request and applies the latest viewport at once", () => {
    const free = run([{ type: "localChange" }], follower).state;
    const { state, effects } = run([{ type: "setMode", mode: "follow" }], free);
    expect(state.mode).toBe("follow");
    expect(effects).toEqual([{ kind: "sendMode", mode: "follow" }, { kind: "applyLatest" }]);
  });

  it("never switches the leader to free: the leader's changes are the room's", () => {
    const { state, effects } = run([{ type: "localChange" }], leader);
    expect(state).toBe(leader);
    expect(effects).toEqual([]);
    expect(applies(leader)).toBe(false);
  });

  it("keeps a free follower free when the lead moves between others", () => {
    const free = run([{ type: "localChange" }], follower).state;
    const { state, effects } = run([{ type: "leaderChanged", leader: "third" }], free);
    expect(state.mode).toBe("free");
    expect(effects).toEqual([]);
  });
});

describe("leadership hand-over", () => {
  it("asks once, shows the request as pending, and clears it when the lead arrives", () => {
    const asked = run([{ type: "askLead" }, { type: "askLead" }], follower);
    expect(asked.effects).toEqual([{ kind: "sendLeaderRequest" }]);
    expect(leadUi(asked.state)).toMatchObject({ role: "following", showTakeLead: true, takeLeadDisabled: true });
    const granted = run([{ type: "leaderChanged", leader: "me" }], asked.state);
    expect(isLeader(granted.state)).toBe(true);
    expect(leadUi(granted.state)).toMatchObject({ role: "leading", showTakeLead: false, showFollowToggle: false, takeLeadDisabled: false });
  });

  it("lets the leader see who asks, hand over to one, and then follow the new leader", () => {
    let state = run([{ type: "leadRequested", conn: "ann" }, { type: "leadRequested", conn: "bob" }, { type: "leadRequested", conn: "ann" }], leader).state;
    expect(leadUi(state).requests).toEqual(["ann", "bob"]);
    const grant = run([{ type: "grant", to: "bob" }], state);
    expect(grant.effects).toEqual([{ kind: "sendGrant", to: "bob" }]);
    state = grant.state;
    expect(state.requests).toEqual(["ann"]);
    // The server confirms: I follow now, requests addressed to me are gone.
    const after = run([{ type: "leaderChanged", leader: "bob" }], state);
    expect(after.state.requests).toEqual([]);
    expect(after.state.mode).toBe("follow");
    expect(after.effects).toEqual([{ kind: "applyLatest" }]);
    expect(leadUi(after.state)).toMatchObject({ role: "following", showTakeLead: true, following: true });
  });

  it("drops requests from people who left or were turned down", () => {
    let state = run([{ type: "leadRequested", conn: "ann" }, { type: "leadRequested", conn: "bob" }], leader).state;
    state = run([{ type: "left", conn: "ann" }, { type: "dismiss", conn: "bob" }], state).state;
    expect(state.requests).toEqual([]);
  });

  it("ignores requests and grants when I do not lead", () => {
    const { state, effects } = run([{ type: "leadRequested", conn: "ann" }, { type: "grant", to: "ann" }], follower);
    expect(state.requests).toEqual([]);
    expect(effects).toEqual([]);
  });

  it("lets me ask again after a refusal or when someone else got the lead", () => {
    const asked = run([{ type: "askLead" }], follower).state;
    expect(run([{ type: "askRefused" }], asked).state.asked).toBe(false);
    expect(run([{ type: "leaderChanged", leader: "third" }], asked).state.asked).toBe(false);
  });

  it("shows 'waiting' before joining and in a room without a leader", () => {
    expect(leadUi(initialLead)).toMatchObject({ role: "waiting", showTakeLead: false, showFollowToggle: false });
    const alone = run([{ type: "joined", me: "me", leader: null, mode: "follow" }]).state;
    expect(leadUi(alone)).toMatchObject({ role: "waiting", showTakeLead: true });
  });

  it("a leader who was free before leading follows after handing over, and says so", () => {
    const freeThenLead = run([{ type: "localChange" }, { type: "leaderChanged", leader: "me" }], follower).state;
    const { state, effects } = run([{ type: "leaderChanged", leader: "ann" }], freeThenLead);
    expect(state.mode).toBe("follow");
    expect(effects).toEqual([{ kind: "sendMode", mode: "follow" }, { kind: "applyLatest" }]);
  });
});

describe("nobody leading", () => {
  it("copies nothing: after a server restart everyone keeps what is on their screen", () => {
    const { state, effects } = run([{ type: "joined", me: "me", leader: null, mode: "follow" }]);
    expect(effects).toEqual([]);
    expect(run([{ type: "leaderChanged", leader: "me" }], state).effects).toEqual([]);
    expect(run([{ type: "leaderChanged", leader: null }], follower).effects).toEqual([]);
  });
});
