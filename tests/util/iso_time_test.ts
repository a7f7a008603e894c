import assert from "node:assert/strict";
import { isoDay, isoTime } from "../../src/util/iso_time.ts";
import { test } from "../_support/test.ts";

test("isoTime writes what toISOString writes: edges of days, months, leap years and milliseconds", () => {
  const times = [
    0,
    1,
    999,
    Date.UTC(2024, 1, 29, 23, 59, 59, 999),
    Date.UTC(2026, 11, 31, 23, 59, 59, 990),
    Date.UTC(2027, 0, 1, 0, 0, 0, 9),
    Date.UTC(1000, 0, 1),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(999, 11, 31, 23, 59, 59, 999), // three-digit year: V8's own
    Date.UTC(10000, 0, 1), // five digits: V8's own
    -1,
    Date.UTC(-1, 0, 1),
  ];
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    times.push(Math.floor((seed / 2147483648) * 4_102_444_800_000)); // 1970 to 2100
  }
  for (const ms of times) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
    assert.equal(isoDay(ms), new Date(ms).toISOString().slice(0, 10));
  }
  assert.throws(() => isoTime(NaN), RangeError, "no date: as toISOString");
});

test("no source file but iso_time.ts calls toISOString (its first use pages in ~1 MiB of the runtime)", async () => {
  const root = new URL("../../", import.meta.url);
  const callers: string[] = [];
  const walk = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts") && entry.name !== "iso_time.ts") {
        const text = await Deno.readTextFile(url);
        if (text.includes(".toISOString(")) callers.push(url.pathname.slice(root.pathname.length));
      }
    }
  };
  await walk(new URL("src/", root));
  const main = await Deno.readTextFile(new URL("main.ts", root));
  if (main.includes(".toISOString(")) callers.push("main.ts");
  assert.deepEqual(callers, [], "use isoTime / isoDay from src/util/iso_time.ts");
});
