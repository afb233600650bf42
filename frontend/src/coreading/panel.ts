// The co-reading panel beside the viewport grid: the study's rooms (join or
// open one), then in a room: connection state, who is there (avatars in their
// colours, who leads), follow/free, take the lead or hand it over, the laser
// pointer, and the chat. Plain DOM, like the rest of the viewer.

import type { Translator } from "../i18n";
import { h } from "../viewer/dom";
import type { CoreadingClient, Status } from "./client";
import { leadUi } from "./lead";
import type { Openable, Room, StudyRooms } from "./rooms";

export interface PanelActions {
  join(room: Room): void;
  openRoom(title: string): Promise<void>;
  /** Open a consultation's room that nobody opened yet, and join it. */
  openConsultation(offer: Openable): Promise<void>;
  invite(room: Room, user: string): Promise<string>;
  loadRooms(): Promise<StudyRooms>;
  setPointer(on: boolean): void;
}

function initials(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) {
    return "?";
  }
  // Korean names: the family name (first syllable); others: first letters of two words.
  if (/^[\uac00-\ud7a3]/.test(trimmed)) {
    return trimmed.slice(0, 1);
  }
  return trimmed
    .split(/\s+/)
    .slice(0, 2)
    .map((word) => word[0]?.toUpperCase() ?? "")
    .join("");
}

function timeOf(at: string): string {
  const date = new Date(at);
  // In the page's language (the user's choice), not the browser's.
  const language = document.documentElement.lang || undefined;
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" });
}

export class CoreadingPanel {
  readonly element: HTMLElement;
  readonly toolbarButton: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly roomsSection: HTMLElement;
  private readonly roomSection: HTMLElement;
  private readonly people: HTMLElement;
  private readonly role: HTMLElement;
  private readonly followButton: HTMLButtonElement;
  private readonly leadButton: HTMLButtonElement;
  private readonly pointerButton: HTMLButtonElement;
  private readonly requests: HTMLElement;
  private readonly notice: HTMLElement;
  private readonly messages: HTMLOListElement;
  private readonly chatInput: HTMLInputElement;
  private readonly inviteForm: HTMLFormElement;
  private client: CoreadingClient | null = null;
  private room: Room | null = null;
  private noticeTimer: number | null = null;

  constructor(
    private readonly t: Translator,
    private readonly actions: PanelActions,
  ) {
    this.toolbarButton = h(
      "button",
      { type: "button", className: "tool coreading-toggle", title: t("coreading.readTogether"), "aria-pressed": "false" },
      h("span", { className: "icon", "aria-hidden": "true" }, "⇄"),
      h("span", { className: "label" }, t("coreading.readTogether")),
    );
    this.toolbarButton.addEventListener("click", () => this.toggle());
    this.status = h("span", { className: "coreading-status", role: "status", "data-status": "" });
    this.roomsSection = h("section", { className: "coreading-rooms" });
    this.people = h("ul", { className: "coreading-people", "aria-label": t("coreading.people") });
    this.role = h("p", { className: "coreading-role", "aria-live": "polite" });
    this.followButton = h(
      "button",
      { type: "button", className: "coreading-follow", "aria-pressed": "true", title: t("coreading.followHint") },
      t("coreading.follow"),
    );
    this.followButton.addEventListener("click", () => {
      const client = this.client;
      if (client) {
        client.setMode(client.lead.mode === "follow" ? "free" : "follow");
      }
    });
    this.leadButton = h("button", { type: "button", className: "coreading-take-lead" }, t("coreading.takeLead"));
    this.leadButton.addEventListener("click", () => this.client?.askLead());
    this.pointerButton = h(
      "button",
      { type: "button", className: "coreading-pointer", "aria-pressed": "false", title: t("coreading.pointerHint") },
      "⦿ ",
      t("coreading.pointer"),
    );
    this.pointerButton.addEventListener("click", () => {
      const on = this.pointerButton.getAttribute("aria-pressed") !== "true";
      this.pointerButton.setAttribute("aria-pressed", String(on));
      this.actions.setPointer(on);
    });
    this.requests = h("div", { className: "coreading-requests" });
    this.notice = h("p", { className: "coreading-notice", role: "status" });
    this.notice.hidden = true;
    this.messages = h("ol", { className: "coreading-messages", "aria-live": "polite", "aria-label": t("coreading.chat") });
    this.chatInput = h("input", {
      type: "text",
      className: "coreading-chat-input",
      maxlength: 2000,
      placeholder: t("coreading.chatPlaceholder"),
      "aria-label": t("coreading.chatPlaceholder"),
      autocomplete: "off",
    });
    const chatForm = h(
      "form",
      { className: "coreading-chat-form" },
      this.chatInput,
      h("button", { type: "submit" }, t("coreading.send")),
    );
    chatForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.client?.sendChat(this.chatInput.value)) {
        this.chatInput.value = "";
      }
    });
    // Keys typed into the chat belong to the chat, not to the viewer's shortcuts.
    this.chatInput.addEventListener("keydown", (event) => event.stopPropagation());
    this.inviteForm = this.buildInviteForm();
    this.roomSection = h(
      "section",
      { className: "coreading-room" },
      this.people,
      this.role,
      h("div", { className: "coreading-controls" }, this.followButton, this.leadButton, this.pointerButton),
      this.requests,
      this.notice,
      this.inviteForm,
      h("p", { className: "hint" }, t("coreading.annotationsBy")),
      h("h3", {}, t("coreading.chat")),
      this.messages,
      chatForm,
    );
    this.roomSection.hidden = true;
    const close = h("button", { type: "button", className: "close", title: t("coreading.hide"), "aria-label": t("coreading.hide") }, "×");
    close.addEventListener("click", () => this.setOpen(false));
    this.element = h(
      "aside",
      { className: "coreading-panel", "aria-label": t("coreading.title") },
      h("header", {}, h("h2", {}, t("coreading.title")), this.status, close),
      this.roomsSection,
      this.roomSection,
    );
    this.element.hidden = true;
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  setOpen(open: boolean): void {
    this.element.hidden = !open;
    this.toolbarButton.setAttribute("aria-pressed", String(open));
    if (open && !this.room) {
      void this.showRooms();
    }
  }

  toggle(): void {
    this.setOpen(!this.isOpen);
  }

  // --- Before joining: the study's rooms ------------------------------------------------

  async showRooms(): Promise<void> {
    const t = this.t;
    this.roomsSection.replaceChildren(h("p", { className: "hint" }, t("coreading.status.connecting")));
    let rooms: Room[];
    let openable: Openable[];
    try {
      ({ rooms, openable } = await this.actions.loadRooms());
    } catch {
      this.roomsSection.replaceChildren(h("p", { className: "coreading-error" }, t("coreading.roomsFailed")));
      return;
    }
    if (this.room) {
      return;
    }
    const list = h(
      "ul",
      { className: "coreading-room-list" },
      rooms.map((room) => {
        const join = h("button", { type: "button", "data-room": room.id }, t("coreading.join"));
        join.addEventListener("click", () => this.actions.join(room));
        const label = room.title || (room.kind === "consultation" ? t("coreading.consultationRoom") : t("coreading.adhocRoom", { name: room.owner?.name ?? "" }));
        return h("li", {}, h("span", { className: "room-title" }, label), join);
      }),
      // Consultation rooms nobody opened yet: joining opens them.
      openable.map((offer) => {
        const join = h("button", { type: "button", "data-consultation": offer.consultation }, t("coreading.join"));
        join.addEventListener("click", () => {
          join.disabled = true;
          this.actions.openConsultation(offer).catch((error: unknown) => {
            join.disabled = false;
            this.showNotice(t("coreading.problem", { message: String((error as Error).message ?? error) }));
          });
        });
        return h("li", {}, h("span", { className: "room-title" }, offer.title || t("coreading.consultationRoom")), join);
      }),
    );
    const title = h("input", { type: "text", maxlength: 200, placeholder: t("coreading.roomTitle"), "aria-label": t("coreading.roomTitle") });
    title.addEventListener("keydown", (event) => event.stopPropagation());
    const open = h("form", { className: "coreading-open" }, title, h("button", { type: "submit" }, t("coreading.openRoom")));
    open.addEventListener("submit", (event) => {
      event.preventDefault();
      this.actions.openRoom(title.value.trim()).catch((error: unknown) => this.showNotice(t("coreading.problem", { message: String((error as Error).message ?? error) })));
    });
    this.roomsSection.replaceChildren(
      h("h3", {}, t("coreading.rooms")),
      rooms.length + openable.length ? list : h("p", { className: "hint" }, t("coreading.noRooms")),
      open,
    );
  }

  showRoomFailure(): void {
    this.setOpen(true);
    this.roomsSection.prepend(h("p", { className: "coreading-error" }, this.t("coreading.roomFailed")));
  }

  // --- In a room ----------------------------------------------------------------------------

  attach(client: CoreadingClient, room: Room): void {
    this.client = client;
    this.room = room;
    this.roomsSection.hidden = true;
    this.roomSection.hidden = false;
    this.inviteForm.hidden = !room.can_manage;
    this.element.dataset.room = room.id;
    client.listen({
      status: (status) => this.renderStatus(status),
      people: () => this.renderPeople(),
      chat: () => this.renderChat(),
      problem: (_code, message) => this.showNotice(this.t("coreading.problem", { message })),
    });
    this.renderStatus(client.status);
    this.renderPeople();
    this.renderChat();
    this.setOpen(true);
  }

  private renderStatus(status: Status): void {
    const t = this.t;
    this.status.dataset.status = status;
    this.element.dataset.status = status;
    this.status.textContent = t(`coreading.status.${status}`);
    const usable = status === "live" || status === "reconnecting" || status === "connecting";
    for (const control of [this.followButton, this.leadButton, this.pointerButton, this.chatInput]) {
      control.disabled = !usable;
    }
  }

  private renderPeople(): void {
    const client = this.client;
    if (!client) {
      return;
    }
    const t = this.t;
    const ui = leadUi(client.lead);
    const leader = client.participant(client.lead.leader);
    this.element.dataset.role = ui.role;
    this.people.replaceChildren(
      ...client.people().map((person) => {
        const leads = client.lead.leader !== null && person.conns.includes(client.lead.leader);
        const me = person.user === client.you?.user;
        const free = person.participant.mode === "free" && !leads;
        const institution = person.participant.institution?.name ?? "";
        const title = [person.name + (me ? ` ${t("coreading.you")}` : ""), institution, leads ? t("coreading.leading") : free ? t("coreading.modeFree") : ""]
          .filter(Boolean)
          .join(" · ");
        const avatar = h(
          "li",
          {
            className: `coreading-avatar${leads ? " leader" : ""}${free ? " free" : ""}${me ? " me" : ""}`,
            title,
            "data-user": person.user,
            style: `--person: ${person.colour}`,
          },
          h("span", { className: "initials", "aria-hidden": "true" }, initials(person.name)),
          h("span", { className: "name" }, person.name),
        );
        if (ui.role === "leading" && !me) {
          // The leader hands over by choosing a person.
          const to = person.conns[person.conns.length - 1];
          const button = h("button", { type: "button", className: "hand-over", title: t("coreading.handOverTo", { name: person.name }) }, "➜");
          button.addEventListener("click", () => client.grantLead(to));
          avatar.append(button);
        }
        return avatar;
      }),
    );
    const leaderName = leader?.name ?? "";
    this.role.textContent =
      ui.role === "leading"
        ? t("coreading.role.leading")
        : ui.role === "following"
          ? t("coreading.role.following", { name: leaderName })
          : ui.role === "free"
            ? t("coreading.role.free", { name: leaderName })
            : t("coreading.role.waiting");
    this.followButton.hidden = !ui.showFollowToggle;
    this.followButton.setAttribute("aria-pressed", String(ui.following));
    this.followButton.textContent = ui.following ? t("coreading.follow") : t("coreading.followAgain");
    this.leadButton.hidden = !ui.showTakeLead;
    this.leadButton.disabled = ui.takeLeadDisabled;
    this.leadButton.textContent = ui.takeLeadDisabled ? t("coreading.asked") : t("coreading.takeLead");
    this.requests.replaceChildren(
      ...ui.requests.map((conn) => {
        const name = client.participant(conn)?.name ?? "";
        const grant = h("button", { type: "button", className: "grant" }, t("coreading.handOver"));
        grant.addEventListener("click", () => client.grantLead(conn));
        const dismiss = h("button", { type: "button", className: "dismiss" }, t("coreading.notNow"));
        dismiss.addEventListener("click", () => client.dismissRequest(conn));
        return h("p", { className: "coreading-request", "data-conn": conn }, t("coreading.asks", { name }), grant, dismiss);
      }),
    );
  }

  private renderChat(): void {
    const client = this.client;
    if (!client) {
      return;
    }
    const atBottom = this.messages.scrollTop + this.messages.clientHeight >= this.messages.scrollHeight - 8;
    const items = client.chat.map((message) =>
      h(
        "li",
        { "data-id": message.id, className: message.author.user === client.you?.user ? "mine" : "" },
        h("span", { className: "author", style: `color: ${message.colour}` }, message.author.name),
        h("time", { datetime: message.at }, timeOf(message.at)),
        h("span", { className: "text" }, message.text),
      ),
    );
    const pending = client.pendingChat().map((message) =>
      h(
        "li",
        { className: "mine pending", "data-pending": message.id },
        h("span", { className: "author" }, client.people().find((p) => p.user === client.you?.user)?.name ?? ""),
        h("time", {}, this.t("coreading.sending")),
        h("span", { className: "text" }, message.text),
      ),
    );
    this.messages.replaceChildren(
      ...(items.length + pending.length === 0 ? [h("li", { className: "empty" }, this.t("coreading.noMessages"))] : [...items, ...pending]),
    );
    if (atBottom || pending.length > 0) {
      this.messages.scrollTop = this.messages.scrollHeight;
    }
  }

  private buildInviteForm(): HTMLFormElement {
    const t = this.t;
    const input = h("input", { type: "text", placeholder: t("coreading.invitePlaceholder"), "aria-label": t("coreading.invitePlaceholder") });
    input.addEventListener("keydown", (event) => event.stopPropagation());
    const form = h("form", { className: "coreading-invite" }, input, h("button", { type: "submit" }, t("coreading.invite")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const room = this.room;
      const name = input.value.trim();
      if (!room || !name) {
        return;
      }
      this.actions.invite(room, name).then(
        (invited) => {
          input.value = "";
          this.showNotice(t("coreading.invited", { name: invited }));
        },
        (error: unknown) => this.showNotice(t("coreading.problem", { message: String((error as Error).message ?? error) })),
      );
    });
    form.hidden = true;
    return form;
  }

  private showNotice(text: string): void {
    this.notice.textContent = text;
    this.notice.hidden = false;
    if (this.noticeTimer !== null) {
      window.clearTimeout(this.noticeTimer);
    }
    this.noticeTimer = window.setTimeout(() => {
      this.notice.hidden = true;
      this.noticeTimer = null;
    }, 6000);
  }
}
