/**
 * A streamed answer's headers put straight onto the runtime's header list (stream_response.ts) against the
 * `Response` constructor, on hostile names and values (control characters, CR/LF/NUL, DEL, Latin-1 and wider
 * characters, spaces and tabs at the ends, empty names, upper case): the same headers on the wire, byte for byte,
 * or the same TypeError. Random records from a small deterministic generator, each made both ways in process and,
 * when Deno can serve it, served both ways and read off a raw socket (a value with a control character other than
 * tab, or DEL, passes the constructor but makes Deno 2.9.6's writer panic: the upstream client refuses those,
 * tests/upstream/http1_head_values_test.ts).
 */

import assert from "node:assert/strict";
import { streamResponse } from "../../src/http/stream_response.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const NAME_PARTS = ["x-a", "X-B", "content-type", "x-", "_", "~", "é", " ", ":", "", "x-a"];
const VALUE_PARTS = [
  "v",
  " ",
  "\t",
  "\x01",
  "\x7f",
  "\x80",
  "\xa0",
  "\xe9",
  "\xff",
  "\u0100",
  "\r",
  "\n",
  "\0",
  ":",
  "",
];

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

function records(count: number): Record<string, string>[] {
  const next = random(1422);
  const pick = (parts: string[]) => parts[Math.floor(next() * parts.length)];
  const out: Record<string, string>[] = [];
  for (let i = 0; i < count; i++) {
    const headers: Record<string, string> = { "content-type": "text/event-stream" };
    const size = 1 + Math.floor(next() * 3);
    for (let h = 0; h < size; h++) {
      const name = pick(NAME_PARTS) + (next() < 0.5 ? pick(NAME_PARTS) : "");
      // Mostly plain values, so both ways are taken.
      let value = next() < 0.4 ? "plain" : "";
      const parts = Math.floor(next() * 4);
      for (let p = 0; p < parts; p++) value += next() < 0.5 ? pick(VALUE_PARTS) : "w";
      headers[name] = value;
    }
    out.push(headers);
  }
  return out;
}

// deno-lint-ignore no-control-regex
const PANICS = /[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]/;
const events = () => ReadableStream.from([encoder.encode("data: one\n\n")]);

/** What a handler's answer looks like on the wire: its head without the date, or the error it threw. */
async function wire(make: () => Response): Promise<string> {
  let thrown: string | undefined;
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: () => new Response(null, { status: 599 }),
  }, () => {
    try {
      return make();
    } catch (error) {
      thrown = `${(error as Error).name}`;
      return new Response(null, { status: 500 });
    }
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await conn.write(encoder.encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(4096);
    for (let read = await conn.read(buffer); read !== null; read = await conn.read(buffer)) {
      chunks.push(buffer.slice(0, read));
    }
    if (thrown) return `threw ${thrown}`;
    const text = String.fromCharCode(...chunks.flatMap((chunk) => [...chunk]));
    return text.split("\r\n").filter((line) => !line.startsWith("date:")).join("\n");
  } finally {
    conn.close();
  }
}

test("hostile header records: the runtime's list gets what the constructor would, or the same refusal", {
  timeout: 60_000,
}, async () => {
  let listed = 0;
  let served = 0;
  for (const headers of records(150)) {
    if (Object.values(headers).some((value) => PANICS.test(value))) {
      await compareInProcess(headers);
      continue;
    }
    served++;
    const pushed = await wire(() => streamResponse(events(), 200, headers));
    const built = await wire(() => new Response(events(), { status: 200, headers }));
    assert.equal(pushed, built, JSON.stringify(headers));
    if (await compareInProcess(headers)) listed++;
  }
  assert.ok(listed > 30, `only ${listed} records were valid headers`);
  assert.ok(served > 50, `only ${served} records were served`);
});

/** What `response.headers` lists, both ways; true when the record made a Response. */
async function compareInProcess(headers: Record<string, string>): Promise<boolean> {
  let made = false;
  let inProcess: string;
  try {
    const response = streamResponse(events(), 200, headers);
    inProcess = JSON.stringify([...response.headers]);
    await response.body?.cancel();
    made = true;
  } catch (error) {
    inProcess = (error as Error).name;
  }
  let expected: string;
  try {
    const response = new Response(events(), { status: 200, headers });
    expected = JSON.stringify([...response.headers]);
    await response.body?.cancel();
  } catch (error) {
    expected = (error as Error).name;
  }
  assert.equal(inProcess, expected, JSON.stringify(headers));
  return made;
}
