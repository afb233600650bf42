// Co-reading in the viewer: the "Read together" button, the panel, and, in a
// room (`?room=<id>` in the address, docs/coreading.md), the connection and
// its bridge to the viewer. Started by main.ts once the viewer is up.

import "./coreading.css";

import type { Translator } from "../i18n";
import { ViewerBridge, type ViewHost } from "./bridge";
import { CoreadingClient, type SocketLike } from "./client";
import { CoreadingPanel } from "./panel";
import { LaserPointers } from "./pointer";
import { RoomApi, websocketUrl, type Openable, type Room } from "./rooms";

export interface CoreadingConfig {
  studyInstanceUID: string;
  /** The co-reading HTTP API's root (default /api/coreading). */
  coreadingApi?: string;
}

export function startCoreading(host: ViewHost, root: HTMLElement, config: CoreadingConfig, t: Translator): void {
  const toolbarEnd = root.querySelector(".viewer-toolbar .group.end");
  const body = root.querySelector<HTMLElement>(".viewer-body");
  const grid = root.querySelector<HTMLElement>(".viewport-grid");
  if (!toolbarEnd || !body || !grid) {
    return;
  }
  const api = new RoomApi(config.coreadingApi ?? "/api/coreading");
  let joined: CoreadingClient | null = null;

  const join = async (room: Room): Promise<void> => {
    if (joined) {
      return;
    }
    if (room.study !== config.studyInstanceUID) {
      // A room of another study: open that study's viewer in the room.
      window.location.assign(room.viewer);
      return;
    }
    const url = new URL(window.location.href);
    url.searchParams.set("room", room.id);
    window.history.replaceState(window.history.state, "", url);
    const client = new CoreadingClient({
      url: websocketUrl(room.websocket, window.location),
      socket: (address) => new WebSocket(address) as unknown as SocketLike,
    });
    joined = client;
    const bridge = new ViewerBridge(host, root, grid, client, () => panel.element);
    const pointers = new LaserPointers(grid, bridge, client);
    bridge.start();
    pointers.start();
    panel.attach(client, room);
    actions.setPointer = (on) => pointers.setTool(on);
    window.addEventListener("online", () => client.retryNow());
    window.addEventListener("pagehide", () => client.stop());
    // For people and browser tests: the room's state on the viewer element.
    root.dataset.coreading = room.id;
    client.connect();
  };

  const actions = {
    join: (room: Room) => void join(room),
    loadRooms: () => api.rooms(config.studyInstanceUID),
    openRoom: async (title: string) => join(await api.open(config.studyInstanceUID, title)),
    openConsultation: async (offer: Openable) => join(await api.openConsultation(offer.consultation)),
    invite: async (room: Room, user: string) => (await api.invite(room.id, user)).name,
    setPointer: (_on: boolean) => undefined as void,
  };
  const panel = new CoreadingPanel(t, actions);
  toolbarEnd.prepend(panel.toolbarButton);
  body.append(panel.element);

  const roomId = new URLSearchParams(window.location.search).get("room");
  if (roomId) {
    api.get(roomId).then(
      (room) => join(room),
      () => panel.showRoomFailure(),
    );
  }
}
