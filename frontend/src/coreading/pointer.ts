// The laser pointer: mine goes out (≤ 20 Hz, image coordinates) while the
// pointer tool is on or Shift is held over an image; everyone else's is drawn
// on one canvas over the viewport grid, in their colour, with a short trail.

import { utilities } from "@cornerstonejs/core";

import type { ViewerBridge } from "./bridge";
import type { CoreadingClient } from "./client";
import { Pointers } from "./pointerState";
import type { Point, PointerData } from "./protocol";
import { Coalescer, intervalForRate } from "./throttle";

const POINTER_HZ = 20;

export class LaserPointers {
  private readonly pointers = new Pointers();
  private readonly canvas: HTMLCanvasElement;
  private readonly out: Coalescer<PointerData>;
  private toolOn = false;
  private shift = false;
  private showing = false;
  private frame: number | null = null;
  /** Where my pointer was last (to send `hidden` once when it goes). */
  private sentVisible = false;

  constructor(
    private readonly grid: HTMLElement,
    private readonly bridge: ViewerBridge,
    private readonly client: CoreadingClient,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "coreading-pointers";
    this.canvas.setAttribute("aria-hidden", "true");
    this.canvas.dataset.visible = "0";
    this.out = new Coalescer<PointerData>(intervalForRate(POINTER_HZ), (data) => this.client.sendPointer(data));
  }

  start(): void {
    this.grid.append(this.canvas);
    this.grid.addEventListener("pointermove", (event) => this.onMove(event));
    this.grid.addEventListener("pointerleave", () => this.hide());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Shift") {
        this.shift = true;
      }
    });
    document.addEventListener("keyup", (event) => {
      if (event.key === "Shift") {
        this.shift = false;
        if (!this.toolOn) {
          this.hide();
        }
      }
    });
    window.addEventListener("blur", () => {
      this.shift = false;
      this.hide();
    });
    this.client.listen({
      pointer: (from, _user, data) => {
        this.pointers.update(from, data, performance.now());
        this.schedule();
      },
      people: () => {
        for (const entry of this.pointers.visible(performance.now())) {
          if (!this.client.participants.has(entry.entry.from)) {
            this.pointers.remove(entry.entry.from);
          }
        }
      },
    });
  }

  get on(): boolean {
    return this.toolOn;
  }

  setTool(on: boolean): void {
    this.toolOn = on;
    this.grid.classList.toggle("coreading-pointing", on);
    if (!on) {
      this.hide();
    }
  }

  private onMove(event: PointerEvent): void {
    if (!(this.toolOn || event.shiftKey || this.shift) || !this.client.isLive) {
      return;
    }
    const cellElement = (event.target as HTMLElement | null)?.closest<HTMLElement>(".viewport-cell");
    const index = Number(cellElement?.dataset.cell);
    const cell = this.bridge.visibleCells().find((candidate) => candidate.index === index);
    if (!cell) {
      this.hide();
      return;
    }
    const rect = cell.viewport.element.getBoundingClientRect();
    const world = cell.viewport.canvasToWorld([event.clientX - rect.left, event.clientY - rect.top]);
    const imageId = cell.viewport.getCurrentImageId();
    if (!imageId) {
      return;
    }
    let point: Point;
    try {
      point = utilities.worldToImageCoords(imageId, world) as Point;
    } catch {
      return;
    }
    this.sentVisible = true;
    this.out.push({ series: cell.series, image: cell.viewport.getCurrentImageIdIndex(), x: round(point[0]), y: round(point[1]) });
  }

  private hide(): void {
    if (!this.sentVisible) {
      return;
    }
    this.sentVisible = false;
    this.out.flush();
    this.client.sendPointer({ hidden: true });
  }

  // --- Drawing ---------------------------------------------------------------------------

  private schedule(): void {
    if (this.frame === null) {
      this.frame = requestAnimationFrame(() => this.draw());
    }
  }

  private draw(): void {
    this.frame = null;
    const now = performance.now();
    const shown = this.pointers.visible(now);
    const gridRect = this.grid.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(gridRect.width * ratio);
    const height = Math.round(gridRect.height * ratio);
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    const context = this.canvas.getContext("2d");
    if (!context) {
      return;
    }
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, gridRect.width, gridRect.height);
    let drawn = 0;
    const cells = this.bridge.visibleCells();
    for (const { entry, opacity } of shown) {
      const participant = this.client.participant(entry.from);
      const colour = participant?.colour ?? "#ffd54f";
      for (const cell of cells) {
        if (cell.series !== entry.series || cell.viewport.getCurrentImageIdIndex() !== entry.image) {
          continue;
        }
        const imageId = cell.viewport.getImageIds()[entry.image];
        if (!imageId) {
          continue;
        }
        const rect = cell.viewport.element.getBoundingClientRect();
        const toScreen = (x: number, y: number): [number, number] | null => {
          try {
            const world = utilities.imageToWorldCoords(imageId, [x, y]);
            const [cx, cy] = cell.viewport.worldToCanvas(world as [number, number, number]);
            return [cx + rect.left - gridRect.left, cy + rect.top - gridRect.top];
          } catch {
            return null;
          }
        };
        const head = toScreen(entry.x, entry.y);
        if (!head) {
          continue;
        }
        const trail = entry.trail.map((sample) => toScreen(sample.x, sample.y)).filter((p): p is [number, number] => p !== null);
        drawPointer(context, head, trail, colour, participant?.name ?? "", opacity);
        drawn += 1;
      }
    }
    this.canvas.dataset.visible = String(drawn);
    if (this.showing !== drawn > 0) {
      this.showing = drawn > 0;
    }
    if (shown.length > 0) {
      this.schedule();
    }
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function drawPointer(
  context: CanvasRenderingContext2D,
  [x, y]: [number, number],
  trail: [number, number][],
  colour: string,
  name: string,
  opacity: number,
): void {
  context.save();
  context.globalAlpha = opacity;
  if (trail.length > 0) {
    context.strokeStyle = colour;
    context.lineCap = "round";
    const points = [...trail, [x, y] as [number, number]];
    for (let i = 1; i < points.length; i++) {
      context.globalAlpha = opacity * (i / points.length) * 0.6;
      context.lineWidth = 2 + (4 * i) / points.length;
      context.beginPath();
      context.moveTo(points[i - 1][0], points[i - 1][1]);
      context.lineTo(points[i][0], points[i][1]);
      context.stroke();
    }
    context.globalAlpha = opacity;
  }
  // A glowing dot: easy to see on bone and on air alike.
  context.shadowColor = colour;
  context.shadowBlur = 12;
  context.fillStyle = colour;
  context.beginPath();
  context.arc(x, y, 6, 0, Math.PI * 2);
  context.fill();
  context.shadowBlur = 0;
  context.lineWidth = 1.5;
  context.strokeStyle = "#fff";
  context.stroke();
  if (name) {
    context.font = "12px system-ui, sans-serif";
    context.fillStyle = colour;
    context.strokeStyle = "rgba(0,0,0,.8)";
    context.lineWidth = 3;
    context.strokeText(name, x + 10, y - 10);
    context.fillText(name, x + 10, y - 10);
  }
  context.restore();
}
