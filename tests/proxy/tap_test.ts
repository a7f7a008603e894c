/**
 * Watchers stacked on an upstream body (tapStream, mapStream) through the proxy's own HTTP/1.1 client against a
 * real server on loopback: they poll the body instead of pulling a stream each, and still see every chunk once,
 * end once, cancel the upstream when the reader leaves and fail when the upstream is cut.
 */

import assert from "node:assert/strict";
import { pollReader } from "../../src/proxy/chunks.ts";
import { holdStream, mapStream, tapStream } from "../../src/proxy/tap.ts";
import { sourceOf } from "../../src/upstream/body_source.ts";
import { Http1Agent } from "../../src/upstream/http1.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EVENTS = ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n", "data: [DONE]\n\n"];

/**
 * A server whose answer is `events` (`EVENTS` unless given), one per chunk: each after the one before was
 * `received()` by the client and `gapMs` (5) ms passed. Sent on a timer alone, two events read late come in one
 * read (on a loaded machine), and the client rightly hands them on as one chunk; in lockstep every event is a chunk
 * of its own. `cancelled` resolves when a client left early.
 */
function eventServer(events = EVENTS, gapMs = 5) {
  const cancelled = Promise.withResolvers<void>();
  let receipts = 0;
  let wake: (() => void) | undefined;
  const received = () => {
    receipts++;
    wake?.();
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    let index = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (index > 0) {
          await new Promise((resolve) => timer = setTimeout(resolve, gapMs));
          while (receipts < index) await new Promise<void>((resolve) => wake = resolve);
        }
        controller.enqueue(encoder.encode(events[index++]));
        if (index === events.length) controller.close();
      },
      cancel() {
        clearTimeout(timer);
        cancelled.resolve();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  return { server, url: `http://127.0.0.1:${server.addr.port}/`, cancelled: cancelled.promise, received };
}

async function upstreamBody(agent: Http1Agent, url: string): Promise<ReadableStream<Uint8Array>> {
  const reply = await agent.request(url, {
    method: "GET",
    headers: {},
    signal: new AbortController().signal,
  });
  assert.ok(reply.body && sourceOf(reply.body), "the client's body can be polled");
  return reply.body;
}

test("watchers stacked on an upstream body are one pollable layer: each sees every chunk once, the end once", async () => {
  const { server, url, received } = eventServer();
  await using _server = server;
  using agent = new Http1Agent();
  const seen: string[][] = [[], []];
  const ends: boolean[][] = [[], []];
  const first = tapStream(
    await upstreamBody(agent, url),
    (chunk) => {
      seen[0].push(decoder.decode(chunk));
      received();
    },
    (complete) => ends[0].push(complete),
  );
  const upper = mapStream(
    first,
    (chunk) => encoder.encode(decoder.decode(chunk).toUpperCase()),
    () => encoder.encode(": end\n\n"),
  );
  const last = tapStream(
    upper,
    (chunk) => seen[1].push(decoder.decode(chunk)),
    (complete) => ends[1].push(complete),
  );
  assert.ok(sourceOf(first) && sourceOf(upper) && sourceOf(last), "each watcher polls the one below");
  const text = await new Response(last).text();
  assert.equal(text, EVENTS.join("").toUpperCase() + ": end\n\n");
  assert.deepEqual(seen[0], EVENTS);
  assert.deepEqual(seen[1], [...EVENTS.map((event) => event.toUpperCase()), ": end\n\n"]);
  assert.deepEqual(ends, [[true], [true]]);
});

test("watchers stacked, then read through their source (as a coalescing broadcast reads them): each sees every chunk once", async () => {
  const { server, url, received } = eventServer();
  await using _server = server;
  using agent = new Http1Agent();
  const seen: string[] = [];
  const ends: boolean[] = [];
  const first = tapStream(
    await upstreamBody(agent, url),
    (chunk) => {
      seen.push(decoder.decode(chunk));
      received();
    },
    (complete) => ends.push(complete),
  );
  const upper = mapStream(
    first,
    (chunk) => encoder.encode(decoder.decode(chunk).toUpperCase()),
    () => encoder.encode(": end\n\n"),
  );
  const reader = pollReader(upper);
  let text = "";
  for (let chunk = await reader.read(); chunk; chunk = await reader.read()) text += decoder.decode(chunk);
  assert.equal(text, EVENTS.join("").toUpperCase() + ": end\n\n");
  assert.deepEqual(seen, EVENTS);
  assert.deepEqual(ends, [true]);
});

test("a reader that leaves a stack of watchers cancels the upstream answer; each watcher is told once", async () => {
  const { server, url, cancelled } = eventServer();
  await using _server = server;
  using agent = new Http1Agent();
  const ends: boolean[][] = [[], []];
  const first = tapStream(await upstreamBody(agent, url), () => {}, (complete) => ends[0].push(complete));
  const last = tapStream(
    mapStream(first, (chunk) => chunk, () => undefined),
    () => {},
    (complete) => ends[1].push(complete),
  );
  const reader = last.getReader();
  assert.equal(decoder.decode((await reader.read()).value), EVENTS[0]);
  await reader.cancel();
  await cancelled;
  assert.deepEqual(ends, [[false], [false]]);
});

test("an upstream cut mid-answer errors a stack of watchers; each is told it did not complete", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    const answer = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata";
    await conn.write(encoder.encode(answer));
    await new Promise((resolve) => setTimeout(resolve, 20));
    conn.close();
  })();
  try {
    using agent = new Http1Agent();
    const ends: boolean[][] = [[], []];
    const body = await upstreamBody(agent, `http://127.0.0.1:${listener.addr.port}/`);
    const first = tapStream(body, () => {}, (complete) => ends[0].push(complete));
    const last = tapStream(first, () => {}, (complete) => ends[1].push(complete));
    const reader = last.getReader();
    let text = "";
    await assert.rejects(async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += decoder.decode(value);
      }
    }, /closed the connection mid-answer/);
    assert.equal(text, "data: 1\n\ndata", "what arrived before the cut is handed on");
    assert.deepEqual(ends, [[false], [false]]);
  } finally {
    listener.close();
    await serving;
  }
});

test("watchers stacked on a fetch answer (a stream that cannot be polled) see every chunk once, the end once", async () => {
  const { server, url, received } = eventServer();
  await using _server = server;
  const response = await fetch(url);
  assert.ok(response.body && !sourceOf(response.body), "fetch's body has no source");
  const seen: string[] = [];
  const ends: boolean[] = [];
  const first = tapStream(
    response.body,
    (chunk) => {
      seen.push(decoder.decode(chunk));
      received();
    },
    (ok) => ends.push(ok),
  );
  const upper = mapStream(
    first,
    (chunk) => encoder.encode(decoder.decode(chunk).toUpperCase()),
    () => encoder.encode(": end\n\n"),
  );
  assert.ok(sourceOf(first) && sourceOf(upper), "the watchers on it can be polled");
  assert.equal(await new Response(upper).text(), EVENTS.join("").toUpperCase() + ": end\n\n");
  assert.deepEqual(seen, EVENTS);
  assert.deepEqual(ends, [true]);
});

test("a reader that leaves watchers on a fetch answer cancels it; the watcher is told once", async () => {
  const { server, url, cancelled } = eventServer();
  await using _server = server;
  const response = await fetch(url);
  const ends: boolean[] = [];
  const reader = tapStream(response.body!, () => {}, (ok) => ends.push(ok)).getReader();
  assert.equal(decoder.decode((await reader.read()).value), EVENTS[0]);
  await reader.cancel();
  await cancelled;
  assert.deepEqual(ends, [false]);
});

test("a reader that stops reading stops the reads of the upstream: the watchers see no more than it buffered", async () => {
  const event = encoder.encode(`data: ${"x".repeat(1000)}\n\n`);
  const total = 400;
  const sent = Promise.withResolvers<void>();
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    let index = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(event);
        if (++index === total) {
          controller.close();
          sent.resolve();
        }
      },
      cancel: () => sent.resolve(),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  using agent = new Http1Agent();
  let seen = 0;
  const watched = tapStream(
    await upstreamBody(agent, `http://127.0.0.1:${server.addr.port}/`),
    (chunk) => seen += chunk.length,
    () => {},
  );
  const reader = watched.getReader();
  let read = (await reader.read()).value!.length;
  // Time for the socket's buffers to fill: the server stops sending once they are full.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const everything = total * event.length;
  assert.ok(
    seen < 64 * 1024,
    `the watcher saw ${seen} of ${everything} bytes before the reader asked for more`,
  );
  for (let next = await reader.read(); !next.done; next = await reader.read()) read += next.value.length;
  assert.equal(read, everything);
  assert.equal(seen, everything);
  await sent.promise;
});

test("a holding watcher hands a chunk on only once its promise settled, rejected or not, and reads nothing meanwhile", async () => {
  // Events 30 ms apart, each once the one before was seen: the first comes alone.
  const { server, url, received } = eventServer(EVENTS, 30);
  await using _server = server;
  using agent = new Http1Agent();
  const gates = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  const seen: string[] = [];
  const held = holdStream(await upstreamBody(agent, url), (chunk) => {
    seen.push(decoder.decode(chunk));
    received();
    return seen.length <= 2 ? gates[seen.length - 1].promise : undefined;
  });
  const reader = held.getReader();
  const first = reader.read();
  const late = Symbol("not yet");
  const settledYet = (read: Promise<unknown>) =>
    Promise.race([read, new Promise((resolve) => setTimeout(() => resolve(late), 50))]);
  assert.equal(await settledYet(first), late, "held while its write is pending");
  assert.deepEqual(seen, [EVENTS[0]], "nothing read meanwhile");
  gates[0].resolve();
  assert.equal(decoder.decode((await first).value), EVENTS[0]);
  const second = reader.read();
  assert.equal(await settledYet(second), late);
  gates[1].reject(new Error("the write failed"));
  const secondText = decoder.decode((await second).value);
  assert.ok(secondText.startsWith(EVENTS[1]), secondText);
  assert.deepEqual(seen, [EVENTS[0], secondText]);
  let rest = "";
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    rest += decoder.decode(next.value);
  }
  assert.equal(secondText + rest, EVENTS.slice(1).join(""));
});

test("a reader that reads again from within the enqueue of a chunk (Response.text) gets every byte once", async () => {
  // Each chunk that comes after a wait is handed to a read already pending, whose reader reads again at once: that
  // pull comes while the watcher is still handing chunks on, and must not start a second read of the upstream
  // (two reads at once wrote into the same bytes: events lost, doubled, then a malformed chunk).
  const events = Array.from({ length: 30 }, (_, i) => `data: ${i}\n\n`);
  const { server, url, received } = eventServer(events, 2);
  await using _server = server;
  using agent = new Http1Agent();
  const seen: string[] = [];
  const ends: boolean[] = [];
  const tapped = tapStream(
    await upstreamBody(agent, url),
    (chunk) => {
      seen.push(decoder.decode(chunk));
      received();
    },
    (complete) => ends.push(complete),
  );
  assert.equal(await new Response(tapped).text(), events.join(""));
  assert.deepEqual(seen, events);
  assert.deepEqual(ends, [true]);
});
