// Who leads and whether I follow: a small state machine, so the rules of the
// co-reading toolbar (take the lead, hand over, follow/free) are plain data
// that Vitest can walk through. The session turns the effects into messages.

import type { Mode } from "./protocol";

export interface LeadState {
  /** My connection, once the server said it. */
  me: string | null;
  leader: string | null;
  /** Whether I copy the leader's viewport (meaningless while I lead). */
  mode: Mode;
  /** I asked to lead and wait for the leader's answer. */
  asked: boolean;
  /** Connections asking me to hand over (while I lead), oldest first. */
  requests: string[];
}

export type LeadEvent =
  | { type: "joined"; me: string; leader: string | null; mode: Mode }
  | { type: "leaderChanged"; leader: string | null }
  /** The user scrolled, changed the window or the layout by hand. */
  | { type: "localChange" }
  | { type: "setMode"; mode: Mode }
  | { type: "askLead" }
  | { type: "askRefused" }
  | { type: "leadRequested"; conn: string }
  | { type: "grant"; to: string }
  | { type: "dismiss"; conn: string }
  | { type: "left"; conn: string };

export type LeadEffect =
  | { kind: "sendMode"; mode: Mode }
  | { kind: "sendLeaderRequest" }
  | { kind: "sendGrant"; to: string }
  /** Copy the latest leader viewport now (back to follow, or someone else now leads). */
  | { kind: "applyLatest" };

export const initialLead: LeadState = { me: null, leader: null, mode: "follow", asked: false, requests: [] };

export function isLeader(state: LeadState): boolean {
  return state.me !== null && state.leader === state.me;
}

/** Whether a viewport from the leader is applied here now. */
export function applies(state: LeadState): boolean {
  return !isLeader(state) && state.mode === "follow";
}

export function leadStep(state: LeadState, event: LeadEvent): { state: LeadState; effects: LeadEffect[] } {
  const effects: LeadEffect[] = [];
  let next = state;
  switch (event.type) {
    case "joined": {
      next = { ...state, me: event.me, leader: event.leader, mode: event.mode, asked: false, requests: [] };
      // Nobody leads (e.g. everyone reconnects after a server restart): keep what is on screen.
      if (applies(next) && next.leader !== null) {
        effects.push({ kind: "applyLatest" });
      }
      break;
    }
    case "leaderChanged": {
      const wasLeader = isLeader(state);
      next = { ...state, leader: event.leader };
      if (isLeader(next)) {
        next = { ...next, asked: false };
      } else {
        next = { ...next, requests: [] };
        if (wasLeader) {
          // I handed over (or lost the lead): from now on I look where the new leader looks.
          next = { ...next, mode: "follow" };
          if (state.mode !== "follow") {
            effects.push({ kind: "sendMode", mode: "follow" });
          }
        }
        if (next.asked && event.leader !== state.leader) {
          // Someone else got it: my request is moot.
          next = { ...next, asked: false };
        }
        if (applies(next) && next.leader !== null) {
          effects.push({ kind: "applyLatest" });
        }
      }
      break;
    }
    case "localChange":
      if (!isLeader(state) && state.mode === "follow") {
        next = { ...state, mode: "free" };
        effects.push({ kind: "sendMode", mode: "free" });
      }
      break;
    case "setMode":
      if (event.mode !== state.mode) {
        next = { ...state, mode: event.mode };
        effects.push({ kind: "sendMode", mode: event.mode });
        if (applies(next)) {
          effects.push({ kind: "applyLatest" });
        }
      }
      break;
    case "askLead":
      if (!isLeader(state) && !state.asked) {
        next = { ...state, asked: true };
        effects.push({ kind: "sendLeaderRequest" });
      }
      break;
    case "askRefused":
      next = { ...state, asked: false };
      break;
    case "leadRequested":
      if (isLeader(state) && event.conn !== state.me && !state.requests.includes(event.conn)) {
        next = { ...state, requests: [...state.requests, event.conn] };
      }
      break;
    case "grant":
      if (isLeader(state) && event.to !== state.me) {
        next = { ...state, requests: state.requests.filter((conn) => conn !== event.to) };
        effects.push({ kind: "sendGrant", to: event.to });
      }
      break;
    case "dismiss":
    case "left":
      if (state.requests.includes(event.conn)) {
        next = { ...state, requests: state.requests.filter((conn) => conn !== event.conn) };
      }
      break;
  }
  return { state: next, effects };
}

/** What the toolbar shows for a lead state. */
export interface LeadUi {
  /** leading | following | free | waiting (no leader yet, or not joined) */
  role: "leading" | "following" | "free" | "waiting";
  showTakeLead: boolean;
  takeLeadDisabled: boolean;
  showFollowToggle: boolean;
  following: boolean;
  /** Whom to offer the hand-over to (while I lead). */
  requests: string[];
}

export function leadUi(state: LeadState): LeadUi {
  const leading = isLeader(state);
  const joined = state.me !== null;
  return {
    role: !joined ? "waiting" : leading ? "leading" : state.leader === null ? "waiting" : state.mode === "follow" ? "following" : "free",
    showTakeLead: joined && !leading,
    takeLeadDisabled: state.asked,
    showFollowToggle: joined && !leading,
    following: state.mode === "follow",
    requests: leading ? state.requests : [],
  };
}
