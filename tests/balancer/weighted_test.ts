import assert from "node:assert/strict";
import { SmoothWeighted } from "../../src/balancer/weighted.ts";
import { test } from "../_support/test.ts";

const picks = (rotation: SmoothWeighted, candidates: { id: string; weight: number }[], n: number) =>
  Array.from({ length: n }, () => rotation.pick(candidates)!.id);

test("weights 3:1 send exactly 3 and 1 in every window of 4", () => {
  const rotation = new SmoothWeighted();
  const sequence = picks(rotation, [{ id: "a", weight: 3 }, { id: "b", weight: 1 }], 40);
  for (let start = 0; start + 4 <= sequence.length; start += 4) {
    const window = sequence.slice(start, start + 4);
    assert.equal(window.filter((id) => id === "a").length, 3, `window at ${start}: ${window}`);
  }
});

test("smooth: 5:1:1 never sends the heavy endpoint five times in a row", () => {
  const rotation = new SmoothWeighted();
  const sequence = picks(
    rotation,
    [{ id: "a", weight: 5 }, { id: "b", weight: 1 }, { id: "c", weight: 1 }],
    7,
  );
  assert.deepEqual(sequence, ["a", "a", "b", "a", "c", "a", "a"]);
});

test("any window of sum(weights) consecutive picks follows the weights exactly", () => {
  const rotation = new SmoothWeighted();
  const candidates = [{ id: "a", weight: 2 }, { id: "b", weight: 3 }, { id: "c", weight: 5 }];
  const sequence = picks(rotation, candidates, 100);
  for (let start = 0; start + 10 <= sequence.length; start += 10) {
    const window = sequence.slice(start, start + 10);
    for (const { id, weight } of candidates) assert.equal(window.filter((x) => x === id).length, weight);
  }
});

test("one or no candidate", () => {
  const rotation = new SmoothWeighted();
  assert.equal(rotation.pick([]), undefined);
  assert.equal(rotation.pick([{ id: "only", weight: 7 }])?.id, "only");
});
