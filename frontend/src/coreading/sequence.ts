// Applying sequenced messages in order, once each (docs/coreading.md, "Ordering"):
// two server processes may deliver seq 57 and 58 in either order, a resume may
// replay what the snapshot already held, and a lost message leaves a gap that
// only a `sync` can fill.

export interface HasSeq {
  seq: number;
}

export class Sequencer<M extends HasSeq> {
  private last = 0;
  private readonly waiting = new Map<number, M>();

  /** The last sequence number applied (or held by the snapshot). */
  get lastSeq(): number {
    return this.last;
  }

  /** A snapshot (or a resume) holds everything up to *seq*: forget what it covers. */
  reset(seq: number): void {
    this.last = seq;
    for (const key of [...this.waiting.keys()]) {
      if (key <= seq) {
        this.waiting.delete(key);
      }
    }
  }

  /**
   * Offer one message; returns the messages to apply now, in order: none (a
   * duplicate, or one that waits for a missing predecessor), this one, or this
   * one and the buffered successors it unblocks.
   */
  accept(message: M): M[] {
    if (message.seq <= this.last || this.waiting.has(message.seq)) {
      return [];
    }
    if (message.seq > this.last + 1) {
      this.waiting.set(message.seq, message);
      return [];
    }
    const ready = [message];
    this.last = message.seq;
    for (let next = this.waiting.get(this.last + 1); next; next = this.waiting.get(this.last + 1)) {
      this.waiting.delete(next.seq);
      ready.push(next);
      this.last = next.seq;
    }
    return ready;
  }

  /** Messages are waiting for a missing predecessor. */
  get hasGap(): boolean {
    return this.waiting.size > 0;
  }

  get buffered(): number {
    return this.waiting.size;
  }
}
