import { describe, expect, it } from "vitest";

import { Sequencer } from "../src/coreading/sequence";

const m = (seq: number) => ({ seq, name: `m${seq}` });
const names = (list: { name: string }[]) => list.map((item) => item.name);

describe("applying sequenced messages", () => {
  it("applies the next message at once", () => {
    const sequencer = new Sequencer<ReturnType<typeof m>>();
    sequencer.reset(57);
    expect(names(sequencer.accept(m(58)))).toEqual(["m58"]);
    expect(sequencer.lastSeq).toBe(58);
  });

  it("ignores what was applied already or held by the snapshot", () => {
    const sequencer = new Sequencer<ReturnType<typeof m>>();
    sequencer.reset(57);
    expect(sequencer.accept(m(57))).toEqual([]);
    expect(sequencer.accept(m(3))).toEqual([]);
    sequencer.accept(m(58));
    expect(sequencer.accept(m(58))).toEqual([]);
  });

  it("holds a message that arrives early and releases it in order when the gap fills", () => {
    const sequencer = new Sequencer<ReturnType<typeof m>>();
    sequencer.reset(57);
    expect(sequencer.accept(m(59))).toEqual([]);
    expect(sequencer.accept(m(61))).toEqual([]);
    expect(sequencer.accept(m(59))).toEqual([]); // the same one twice is held once
    expect(sequencer.hasGap).toBe(true);
    expect(sequencer.buffered).toBe(2);
    expect(names(sequencer.accept(m(58)))).toEqual(["m58", "m59"]);
    expect(sequencer.hasGap).toBe(true);
    expect(names(sequencer.accept(m(60)))).toEqual(["m60", "m61"]);
    expect(sequencer.hasGap).toBe(false);
    expect(sequencer.lastSeq).toBe(61);
  });

  it("drops held messages that a fresh snapshot already covers", () => {
    const sequencer = new Sequencer<ReturnType<typeof m>>();
    sequencer.reset(10);
    sequencer.accept(m(12));
    sequencer.accept(m(15));
    sequencer.reset(13);
    expect(sequencer.buffered).toBe(1);
    expect(names(sequencer.accept(m(14)))).toEqual(["m14", "m15"]);
  });
});
