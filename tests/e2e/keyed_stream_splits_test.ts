/**
 * A key's streamed chat through the whole per-event stack (the upstream client's reads and joined chunks, the
 * secret mask, the framer, the usage watcher and the usage stripper), against an upstream that cuts its answer
 * anywhere: HTTP chunks at random places (events split mid-line, between CR and LF, inside `"usage"`, several
 * events in one chunk), written in random pieces so reads bring one or many chunks. Each time the client gets the
 * stream it would get without the proxy (no `"usage":null`, no usage chunk), byte for byte, and the usage in the
 * last event is counted once: the key's token budget is reached exactly after the last stream.
 */

import assert from "node:assert/strict";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const KEY = "sk-team-split-5e1d";
const ROUNDS = 24;
const TOKENS = 7;

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

const delta = (content: string, usage: boolean) =>
  `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"${content}"}}]${
    usage ? ',"usage":null' : ""
  }}`;
const USAGE = `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":` +
  `{"prompt_tokens":3,"completion_tokens":4,"total_tokens":${TOKENS}}}`;

/**
 * The upstream's stream (asked for usage) and what the client must get, with `eol` line ends; with `usageLast`, no
 * `[DONE]`: the usage event ends the stream (with CR line ends, its last byte is the CR that ends it).
 */
function streams(round: number, eol: string, usageLast = false) {
  const words = Array.from({ length: 6 + (round % 5) }, (_, i) => `w${round}-${i} é`);
  const end = eol + eol;
  const done = usageLast ? [] : ["data: [DONE]"];
  return {
    asked: [...words.map((word) => delta(word, true)), USAGE, ...done].join(end) + end,
    plain: [...words.map((word) => delta(word, false)), ...done].join(end) + end,
  };
}

/** `body` as HTTP chunks cut at random places, then cut again into random writes. */
function writes(body: Uint8Array, next: () => number): Uint8Array[] {
  let wire = "";
  for (let at = 0; at < body.length;) {
    const size = Math.min(body.length - at, 1 + Math.floor(next() * (next() < 0.3 ? 8 : 300)));
    wire += `${size.toString(16)}\r\n${String.fromCharCode(...body.subarray(at, at + size))}\r\n`;
    at += size;
  }
  wire += "0\r\n\r\n";
  const bytes = Uint8Array.from(wire, (char) => char.charCodeAt(0));
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(next() * (next() < 0.5 ? 20 : 600));
    out.push(bytes.slice(at, at + size));
    at += size;
  }
  return out;
}

interface Run {
  readonly seed: number;
  readonly cache: boolean;
  /** Each round's line ends and whether its usage event ends the stream (no `[DONE]`). */
  readonly shape: (round: number) => { eol: string; usageLast?: boolean };
}

/**
 * `ROUNDS` streams of one key through the proxy, each cut by `writes`: each must reach the client as `plain`, and
 * the next request after the last one is refused (the budget reached by exactly the streams' usage). Each request
 * asks something new, so that with the cache on each is a MISS that goes upstream.
 */
async function run({ seed, cache, shape }: Run) {
  const next = random(seed);
  let round = 0;
  await using upstream = rawServer(async (conn, read) => {
    while (await read()) {
      const { eol, usageLast } = shape(round);
      const { asked } = streams(round, eol, usageLast);
      round++;
      await conn.write(encoder.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
      ));
      for (const piece of writes(encoder.encode(asked), next)) {
        await conn.write(piece);
        if (next() < 0.3) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  });
  const yaml = [
    "model_groups:",
    "  - model_group: gpt-test",
    "    models:",
    endpointYaml(upstream.url, { name: "east" }),
    "general_settings:",
    `  cache: ${cache}`,
    "keys:",
    `  - {name: team-split, key: ${KEY}, tokens_per_day: ${TOKENS * ROUNDS}}`,
  ].join("\n") + "\n";
  await using proxy = await startProxy(yaml);
  const ask = (i: number) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: JSON.stringify({
        model: "gpt-test",
        stream: true,
        messages: [{ role: "user", content: `hi ${i}` }],
      }),
    });
  for (let i = 0; i < ROUNDS; i++) {
    const { eol, usageLast } = shape(i);
    const response = await ask(i);
    assert.equal(response.status, 200, `stream ${i}`);
    assert.equal(response.headers.get("x-llmproxy-cache"), cache ? "MISS" : "BYPASS", `stream ${i}`);
    assert.equal(await response.text(), streams(i, eol, usageLast).plain, `stream ${i}`);
    // The usage is recorded once the stream has ended; the next request reads the budget.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const refused = await ask(ROUNDS);
  assert.equal(refused.status, 429, "the budget is reached by the last stream's usage");
  assert.equal((await refused.json()).error.code, "insufficient_quota");
}

test("a key's stream cut anywhere: the client's stream byte for byte, the last event's usage counted once", {
  timeout: 60_000,
}, () => run({ seed: 314, cache: false, shape: (round) => ({ eol: round % 2 ? "\r\n" : "\n" }) }));

test(
  "with the cache on, CR, CR-LF and LF line ends, and the usage event last: each stream's usage counted once",
  {
    timeout: 60_000,
  },
  () =>
    run({
      seed: 2718,
      cache: true,
      shape: (round) => ({ eol: ["\r", "\r\n", "\n"][round % 3], usageLast: round % 4 < 2 }),
    }),
);
