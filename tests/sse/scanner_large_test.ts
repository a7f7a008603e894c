/**
 * An event far larger than a read (a Responses stream's partial image is megabytes of base64 on one `data:` line)
 * arrives in many chunks: the scanner keeps its start between pushes, and must not copy all of it again for every
 * chunk (quadratic: 8 MiB in 16 KiB reads took 4 s of CPU per scanner, and a stream has several stacked). The raw
 * bytes of events already reported stay as they were while later chunks arrive.
 */

import assert from "node:assert/strict";
import { SseScanner } from "../../src/sse/scanner.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

test("a 16 MiB event in 16 KiB chunks is scanned in linear time, and reported whole once", () => {
  const size = 16 * 1024 * 1024;
  const piece = encoder.encode("x".repeat(16 * 1024));
  for (const fields of [true, false]) {
    const scanner = new SseScanner({ fields });
    const started = performance.now();
    assert.deepEqual(scanner.push(encoder.encode('event: big\ndata: "')), []);
    for (let sent = 0; sent < size; sent += piece.length) assert.equal(scanner.push(piece).length, 0);
    const [event, ...others] = scanner.push(encoder.encode('"\n\ndata: next\n\n'));
    const ms = performance.now() - started;
    // Linear: ~50 ms here; quadratic: ~17 s. The bound holds on a loaded 2-core machine either way.
    assert.ok(ms < 3000, `fields ${fields}: ${Math.round(ms)} ms for one 16 MiB event`);
    assert.equal(event.raw.length, 'event: big\ndata: "'.length + size + 3);
    assert.equal(event.raw[event.raw.length - 4], 120); // the last "x"
    if (fields) {
      assert.equal(event.event, "big");
      assert.equal(event.data!.length, size + 2);
    }
    assert.deepEqual(others.map((other) => decoder.decode(other.raw)), ["data: next\n\n"]);
  }
});

test("events' raw bytes stay intact while later chunks arrive, whatever the cuts", () => {
  const text = Array.from({ length: 60 }, (_, i) => `data: ${"ab".repeat(i * 7)}-${i}\n\n`).join("");
  const bytes = encoder.encode(text);
  for (const step of [1, 3, 17, 64, 500, 4096]) {
    const scanner = new SseScanner();
    const raws: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += step) {
      // A fresh chunk each time, as a stream hands them out.
      for (const event of scanner.push(bytes.slice(at, at + step))) raws.push(event.raw);
    }
    // Decoded only now, after every push: a view into a buffer written again would show other bytes.
    assert.equal(raws.map((raw) => decoder.decode(raw)).join(""), text, `chunks of ${step} bytes`);
    assert.equal(raws.length, 60);
  }
});
