/**
 * The proxy's own HTTP/1.1 client against servers that answer byte by byte as each test scripts them: framing,
 * keep-alive and its failures, aborts, malformed answers, TLS.
 */

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { Http1Agent, UpstreamProtocolError } from "../../src/upstream/http1.ts";
import { neverConnected } from "../../src/upstream/http1_connect.ts";
import { waitFor } from "../../src/upstream/body_source.ts";
import type { Reply } from "../../src/upstream/reply.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Received {
  readonly head: string;
  readonly body: string;
}

/** One accepted connection, with the requests read off it. */
class ServerConn {
  #buffer = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    const read = await this.conn.read(chunk).catch(() => null);
    if (read === null) return false;
    const joined = new Uint8Array(this.#buffer.length + read);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, read), this.#buffer.length);
    this.#buffer = joined;
    return true;
  }

  /** The next request (head and body by its content-length), or undefined when the client closed. */
  async request(): Promise<Received | undefined> {
    for (;;) {
      const text = decoder.decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const head = text.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        const headBytes = encoder.encode(text.slice(0, end + 4)).length;
        while (this.#buffer.length < headBytes + length) if (!await this.#fill()) return undefined;
        const body = decoder.decode(this.#buffer.subarray(headBytes, headBytes + length));
        this.#buffer = this.#buffer.slice(headBytes + length);
        return { head, body };
      }
      if (!await this.#fill()) return undefined;
    }
  }

  /** Reads a request's head only, leaving its body unread. */
  async head(): Promise<string | undefined> {
    for (;;) {
      const end = decoder.decode(this.#buffer.subarray(0, 65536)).indexOf("\r\n\r\n");
      if (end >= 0) return decoder.decode(this.#buffer.subarray(0, end));
      if (!await this.#fill()) return undefined;
    }
  }

  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  /** Resolves when the client closes its side. */
  async closedByClient(): Promise<void> {
    while (await this.#fill());
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}

/** A TCP server on 127.0.0.1 that runs `script` for each connection it accepts. */
function scriptedServer(script: (conn: ServerConn, index: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: ServerConn[] = [];
  const running: Promise<void>[] = [];
  let listening = true;
  const accepting = (async () => {
    for await (const conn of listener) {
      const serverConn = new ServerConn(conn);
      conns.push(serverConn);
      running.push(script(serverConn, conns.length - 1).catch(() => {}).finally(() => serverConn.close()));
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    /** Takes no more connections: the next one is refused. */
    stopListening() {
      if (!listening) return;
      listening = false;
      listener.close();
    },
    get accepted() {
      return conns.length;
    },
    async [Symbol.asyncDispose]() {
      this.stopListening();
      for (const conn of conns) conn.close();
      await accepting.catch(() => {});
      await Promise.all(running);
    },
  };
}

/** Answers each request on the connection with `answer(request)` until the client closes. */
const serveEach =
  (answer: (request: Received, count: number) => string | Uint8Array) => async (conn: ServerConn) => {
    for (let count = 0;; count++) {
      const request = await conn.request();
      if (!request) return;
      await conn.write(answer(request, count));
    }
  };

const json = (text: string, extra = "") =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${
    encoder.encode(text).length
  }\r\n${extra}\r\n${text}`;

function post(agent: Http1Agent, url: string, body = "{}", signal = new AbortController().signal) {
  return agent.fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
}

test("http1: answers come back whole, and one kept-alive connection carries consecutive requests", async () => {
  const seen: Received[] = [];
  await using server = scriptedServer(serveEach((request, count) => {
    seen.push(request);
    return json(`{"n":${count}}`);
  }));
  using agent = new Http1Agent();
  for (let i = 0; i < 3; i++) {
    const response = await post(
      agent,
      `${server.url}/v1/chat/completions?api-version=1`,
      '{"q":"héllo ✓"}',
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.deepEqual(await response.json(), { n: i });
  }
  assert.equal(server.accepted, 1, "one connection for all three");
  assert.equal(agent.idleConnections, 1);
  const [first] = seen;
  assert.match(first.head, /^POST \/v1\/chat\/completions\?api-version=1 HTTP\/1\.1\r\n/);
  assert.match(first.head, new RegExp(`\r\nhost: ${new URL(server.url).host}\r\n`));
  assert.match(first.head, /\r\naccept-encoding: identity\r\n/);
  assert.equal(first.body, '{"q":"héllo ✓"}', "the body's UTF-8 bytes and its content-length agree");
  // A POST with no body (a Responses cancel) still says its length, as fetch does.
  await (await agent.fetch(server.url, { method: "POST", headers: {}, signal: new AbortController().signal }))
    .text();
  assert.match(seen[3].head, /\r\ncontent-length: 0(\r\n|$)/);
});

test("http1: a chunked stream is handed on chunk by chunk as it arrives, not when it ends", async () => {
  const next = Promise.withResolvers<void>();
  await using server = scriptedServer(async (conn) => {
    await conn.request();
    await conn.write(
      "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    await conn.write("d\r\ndata: first\n\n\r\n");
    await next.promise;
    await conn.write("e\r\ndata: second\n\n\r\n0\r\n\r\n");
    await conn.request();
  });
  using agent = new Http1Agent();
  const response = await post(agent, server.url);
  const reader = response.body!.getReader();
  assert.equal(
    decoder.decode((await reader.read()).value),
    "data: first\n\n",
    "before the server sends more",
  );
  next.resolve();
  assert.equal(decoder.decode((await reader.read()).value), "data: second\n\n");
  assert.equal((await reader.read()).done, true);
  assert.equal(agent.idleConnections, 1, "a chunked answer read to its end leaves the connection reusable");
});

test("http1: chunks, lengths and heads split at every byte are put back together", async () => {
  const chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n" +
    "5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: yes\r\n\r\n";
  const big = "x".repeat(100_000);
  await using server = scriptedServer(async (conn) => {
    for (const answer of [chunked, json(big)]) {
      await conn.request();
      // One byte per write for the small answer; the large one in 7,001-byte pieces.
      const bytes = encoder.encode(answer);
      const step = bytes.length > 1000 ? 7001 : 1;
      for (let at = 0; at < bytes.length; at += step) {
        await conn.write(bytes.subarray(at, at + step));
        if (step === 1) await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    await conn.request();
  });
  using agent = new Http1Agent();
  const first = await post(agent, server.url);
  assert.equal(first.headers.get("x-a"), "1");
  assert.equal(await first.text(), "hello world");
  const second = await post(agent, server.url);
  assert.equal((await second.text()).length, big.length);
  assert.equal(server.accepted, 1);
});

test("http1: a body without a length runs to the connection's close, which is not reused", async () => {
  await using server = scriptedServer(async (conn) => {
    await conn.request();
    await conn.write("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ");
    await conn.write("part two");
  });
  using agent = new Http1Agent();
  assert.equal(await (await post(agent, server.url)).text(), "part one, part two");
  assert.equal(await (await post(agent, server.url)).text(), "part one, part two");
  assert.equal(server.accepted, 2);
  assert.equal(agent.idleConnections, 0);
});

test("http1: a kept-alive connection the server closes while idle is dropped before use; the request goes once, on a new one", async () => {
  const received: string[] = [];
  await using server = scriptedServer(async (conn) => {
    const request = await conn.request();
    if (request) received.push(request.body);
    // Keep-alive answer, then the server goes away without a word.
    await conn.write(json(`{"ok":${received.length}}`));
  });
  using agent = new Http1Agent();
  assert.deepEqual(await (await post(agent, server.url, '{"n":1}')).json(), { ok: 1 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(await (await post(agent, server.url, '{"n":2}')).json(), { ok: 2 });
  assert.deepEqual(received, ['{"n":1}', '{"n":2}'], "the second request reached the server once");
  assert.equal(server.accepted, 2);
});

test("http1: a reused connection that drops a fully written request: sent again on a new one, POST too", async () => {
  // An upstream closing an idle keep-alive connection just as a request goes out on it looks like this on the
  // wire; it is not the endpoint failing, so the request goes once more on a fresh connection.
  for (const method of ["GET", "POST"]) {
    const received: string[] = [];
    await using server = scriptedServer(async (conn, index) => {
      for (let count = 0;; count++) {
        const request = await conn.request();
        if (!request) return;
        received.push(request.head.split(" ")[0]);
        // The first connection takes the second request, then dies without a word.
        if (index === 0 && count === 1) return;
        await conn.write(json("{}"));
      }
    });
    using agent = new Http1Agent();
    await (await post(agent, server.url)).text();
    const signal = new AbortController().signal;
    const second = await agent.fetch(server.url, {
      method,
      headers: {},
      body: method === "POST" ? "{}" : undefined,
      signal,
    });
    assert.equal(second.status, 200);
    await second.text();
    assert.deepEqual(received, ["POST", method, method], `the ${method} went again, on a new connection`);
    assert.equal(server.accepted, 2);
  }
});

test("http1: a reused connection that drops a written request, then a refused resend: maybe sent, not never sent", async () => {
  // What an upload is told by `neverConnected`: never sent moves it on to another endpoint (a possible duplicate
  // file, since the first server may have taken it before its connection died).
  let received = 0;
  await using server = scriptedServer(async (conn) => {
    for (let count = 0;; count++) {
      const request = await conn.request();
      if (!request) return;
      received++;
      if (count === 1) {
        server.stopListening();
        return;
      }
      await conn.write(json("{}"));
    }
  });
  using agent = new Http1Agent();
  await (await post(agent, server.url)).text();
  const error = await post(agent, server.url).then(() => undefined, (error) => error);
  assert.ok(error instanceof Error, "the resend is refused");
  assert.equal(received, 2, "the second request reached the server");
  assert.equal(neverConnected(error), false, `${error.message}: marked never sent`);
});

test("http1: an ended answer's connection is closed, not parked, while more than maxOpen are open", async () => {
  const release = Promise.withResolvers<void>();
  await using server = scriptedServer(async (conn) => {
    for (;;) {
      if (!await conn.request()) return;
      await release.promise;
      await conn.write(json("{}"));
    }
  });
  using agent = new Http1Agent({ maxOpen: 1 });
  const both = [post(agent, server.url), post(agent, server.url)];
  await new Promise((resolve) => setTimeout(resolve, 20));
  release.resolve();
  for (const response of await Promise.all(both)) await response.text();
  assert.equal(server.accepted, 2, "two at once need two connections");
  assert.equal(agent.idleConnections, 1, "only one is kept");
  await (await post(agent, server.url)).text();
  assert.equal(agent.idleConnections, 1, "the closed one no longer counts: the one reused is parked again");
  assert.equal(server.accepted, 2);
});

test("http1: a burst of 300 calls at once leaves 300 connections that the next burst reuses", async () => {
  const burst = 300;
  let waiting: PromiseWithResolvers<void> = Promise.withResolvers<void>();
  let arrived = 0;
  await using server = scriptedServer(async (conn) => {
    for (;;) {
      if (!await conn.request()) return;
      // Each answer waits until the whole burst has arrived, so the burst needs as many connections.
      if (++arrived % burst === 0) waiting.resolve();
      await waiting.promise;
      await conn.write(json("{}"));
    }
  });
  using agent = new Http1Agent();
  for (let round = 0; round < 2; round++) {
    const answers = await Promise.all(Array.from({ length: burst }, () => post(agent, server.url)));
    for (const response of answers) await response.text();
    assert.equal(agent.idleConnections, burst, "every connection of the burst is parked");
    waiting = Promise.withResolvers<void>();
  }
  assert.equal(server.accepted, burst, "the second burst took the first one's connections");
  assert.equal(agent.connectionsOpened, burst);
});

test("http1: parked connections do not keep a process alive", async () => {
  await using server = scriptedServer(serveEach(() => json("{}")));
  const started = performance.now();
  const { code, stdout } = await runAgentScript(
    `const response = await agent.fetch("${server.url}", { method: "GET", headers: {}, signal: new AbortController().signal });
await response.text();
console.log("idle", agent.idleConnections);
`,
  );
  assert.equal(code, 0);
  assert.equal(stdout, "idle 1");
  const ms = performance.now() - started;
  assert.ok(
    ms < 10_000,
    `the script ended ${ms.toFixed(0)} ms after it started (idle connections last 30 s)`,
  );
});

test("http1: a request on a parked connection keeps the process alive until its answer comes", async () => {
  // The second answer comes 300 ms after its request, on the first one's connection: nothing else keeps the
  // script alive meanwhile, so a parked read still unrefed would end it before the answer (exit code 1).
  await using server = scriptedServer(async (conn) => {
    for (let count = 0;; count++) {
      if (!await conn.request()) return;
      if (count === 1) await new Promise((resolve) => setTimeout(resolve, 300));
      await conn.write(json(`{"n":${count}}`));
    }
  });
  const { code, stdout } = await runAgentScript(
    `const get = () => agent.fetch("${server.url}", { method: "GET", headers: {}, signal: new AbortController().signal });
console.log(await (await get()).text());
// Not awaited at the top level (a pending top-level await keeps any process alive): only the read does.
get().then((response) => response.text()).then((text) => console.log(text, "opened", agent.connectionsOpened));
`,
  );
  assert.equal(stdout, '{"n":0}\n{"n":1} opened 1');
  assert.equal(code, 0);
});

/**
 * Runs `body` as a script of its own after `const agent = new Http1Agent()`, in a process whose only work is that
 * agent's: whether it ends or stays alive is the agent's doing. Returns its exit code and its trimmed output.
 */
async function runAgentScript(body: string): Promise<{ code: number; stdout: string }> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  const module = new URL("../../src/upstream/http1.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { Http1Agent } from "${module}";\nconst agent = new Http1Agent();\n${body}`,
  );
  try {
    const { code, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stderr: "inherit",
    }).output();
    return { code, stdout: new TextDecoder().decode(stdout).trim() };
  } finally {
    await Deno.remove(script);
  }
}

test("http1: an idle connection past its age is closed, not reused", async () => {
  await using server = scriptedServer(serveEach(() => json("{}")));
  using agent = new Http1Agent({ idleMs: 30 });
  await (await post(agent, server.url)).text();
  await new Promise((resolve) => setTimeout(resolve, 80));
  await (await post(agent, server.url)).text();
  assert.equal(server.accepted, 2);
});

test("http1: an answer cut before its length fails the body read, and its connection is dropped", async () => {
  await using server = scriptedServer(async (conn) => {
    await conn.request();
    await conn.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + "x".repeat(40));
  });
  using agent = new Http1Agent();
  const response = await post(agent, server.url);
  await assert.rejects(response.text(), UpstreamProtocolError);
  assert.equal(server.accepted, 1);
  assert.equal(agent.idleConnections, 0);
});

test("http1: a new connection closed without an answer fails at once (no retry)", async () => {
  await using server = scriptedServer(async (conn) => {
    await conn.request();
  });
  using agent = new Http1Agent();
  await assert.rejects(post(agent, server.url), /closed the connection/);
  assert.equal(server.accepted, 1);
});

test("http1: an answer head past 64 KiB is refused, whole or arriving in pieces", async () => {
  const header = `x-big: ${"b".repeat(70_000)}\r\n`;
  await using server = scriptedServer(async (conn, index) => {
    await conn.request();
    if (index === 0) return await conn.write(`HTTP/1.1 200 OK\r\n${header}\r\n`);
    await conn.write("HTTP/1.1 200 OK\r\n");
    for (let at = 0; at < header.length; at += 8_000) await conn.write(header.slice(at, at + 8_000));
    await conn.closedByClient();
  });
  using agent = new Http1Agent();
  await assert.rejects(post(agent, server.url), /answer head is too large/);
  await assert.rejects(post(agent, server.url), /answer head is too large/);
  assert.equal(agent.idleConnections, 0);
});

test("http1: an abort before the answer rejects with the signal's reason and closes the connection", async () => {
  const closed = Promise.withResolvers<void>();
  await using server = scriptedServer(async (conn) => {
    await conn.request();
    await conn.closedByClient();
    closed.resolve();
  });
  using agent = new Http1Agent();
  const controller = new AbortController();
  const pending = post(agent, server.url, "{}", controller.signal);
  await new Promise((resolve) => setTimeout(resolve, 30));
  controller.abort(new DOMException("gone", "TimeoutError"));
  await assert.rejects(pending, (error: Error) => error.name === "TimeoutError");
  await closed.promise;
  assert.equal(agent.idleConnections, 0);
});

test("http1: malformed answers are refused with a reason that names no URL", async () => {
  const answers = [
    "HTTP/1.1 2OO OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`,
    "HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx-a: one\ntwo\r\ncontent-length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
  ];
  await using server = scriptedServer(async (conn, index) => {
    await conn.request();
    await conn.write(answers[index]);
    // The connection stays open: only the client can decide not to reuse it.
    await conn.request();
  });
  using agent = new Http1Agent();
  for (const [index] of answers.entries()) {
    await assert.rejects(post(agent, server.url), (error: Error) => {
      assert.ok(error instanceof UpstreamProtocolError, String(error));
      assert.doesNotMatch(error.message, /127\.0\.0\.1/);
      return true;
    });
    assert.equal(agent.idleConnections, 0, `answer ${index}: its connection is not kept`);
    assert.equal(server.accepted, index + 1);
  }
});

test("http1: a request's head goes as Latin-1 and its body as UTF-8, whichever of them is ASCII", {
  timeout: 10_000,
}, async () => {
  // A raw socket, not the scripted server (which decodes what it reads as UTF-8): the bytes as they arrived.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const latin1 = new TextDecoder("latin1");
  const readRequest = async (conn: Deno.Conn): Promise<Uint8Array> => {
    let bytes = new Uint8Array(0);
    const buffer = new Uint8Array(65536);
    for (;;) {
      const read = await conn.read(buffer);
      if (read === null) return bytes;
      const more = new Uint8Array(bytes.length + read);
      more.set(bytes);
      more.set(buffer.subarray(0, read), bytes.length);
      bytes = more;
      const text = latin1.decode(bytes);
      const end = text.indexOf("\r\n\r\n");
      const length = Number(/content-length: (\d+)/.exec(text)?.[1] ?? 0);
      if (end >= 0 && bytes.length >= end + 4 + length) return bytes;
    }
  };
  const cases = [
    { agent: "caf\u00e9", body: '{"a":1}' },
    { agent: "plain", body: '{"q":"h\u00e9"}' },
    { agent: "caf\u00e9", body: '{"q":"\u2713"}' },
  ];
  const received: Uint8Array[] = [];
  const serving = (async () => {
    for (let i = 0; i < cases.length; i++) {
      const conn = await listener.accept();
      received.push(await readRequest(conn));
      await conn.write(encoder.encode(json("{}")));
      conn.close();
    }
  })();
  try {
    using agent = new Http1Agent();
    const url = `http://127.0.0.1:${listener.addr.port}`;
    for (const { agent: value, body } of cases) {
      const signal = new AbortController().signal;
      await (await agent.fetch(url, { method: "POST", headers: { "user-agent": value }, body, signal }))
        .text();
    }
    await serving;
  } finally {
    listener.close();
  }
  for (const [i, { agent: value, body }] of cases.entries()) {
    const head = latin1.decode(received[i]);
    const end = head.indexOf("\r\n\r\n") + 4;
    assert.match(
      head,
      new RegExp(`\r\nuser-agent: ${value}\r\n`),
      `case ${i}: one byte per char in the head`,
    );
    const sent = encoder.encode(body);
    assert.match(
      head,
      new RegExp(`\r\ncontent-length: ${sent.length}\r\n`),
      `case ${i}: the length in bytes`,
    );
    assert.deepEqual(received[i].subarray(end), sent, `case ${i}: the body as UTF-8`);
  }
});

test("http1: a header value that would split the request is refused before anything is sent", async () => {
  await using server = scriptedServer(serveEach(() => json("{}")));
  using agent = new Http1Agent();
  const signal = new AbortController().signal;
  await assert.rejects(
    agent.fetch(server.url, {
      method: "POST",
      headers: { "x-a": "1\r\nx-injected: 2" },
      body: "{}",
      signal,
    }),
    /invalid upstream request header/,
  );
  assert.equal(server.accepted, 0);
});

test("http1: interim answers are skipped, a 204 has no body, a gzip body is decoded", async () => {
  const zipped = gzipSync(encoder.encode('{"zipped":true}'));
  await using server = scriptedServer(serveEach((_, count) => {
    if (count === 0) return "HTTP/1.1 100 Continue\r\n\r\n" + json('{"after":"continue"}');
    if (count === 1) return "HTTP/1.1 204 No Content\r\n\r\n";
    const head = encoder.encode(
      `HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${zipped.length}\r\n\r\n`,
    );
    const out = new Uint8Array(head.length + zipped.length);
    out.set(head);
    out.set(zipped, head.length);
    return out;
  }));
  using agent = new Http1Agent();
  assert.deepEqual(await (await post(agent, server.url)).json(), { after: "continue" });
  const empty = await post(agent, server.url);
  assert.equal(empty.status, 204);
  assert.equal(empty.body, null);
  const zippedAnswer = await post(agent, server.url);
  assert.equal(zippedAnswer.headers.get("content-encoding"), null);
  assert.deepEqual(await zippedAnswer.json(), { zipped: true });
  assert.equal(server.accepted, 1);
});

test("http1: an answer's head is read one char per byte, ASCII or not (obs-text is Latin-1)", async () => {
  await using server = scriptedServer(serveEach((_, count) => {
    if (count === 0) return json("{}", "x-note: plain ascii\r\n");
    // 0xE9 (é) and 0x85 (a control char in Latin-1, "…" in windows-1252) in a value; a reason phrase with 0xE9.
    const head = Uint8Array.from(
      "HTTP/1.1 200 Ol\xe9\r\nx-note: caf\xe9 \x85\r\ncontent-length: 2\r\n\r\n{}",
      (char) => char.charCodeAt(0),
    );
    return head;
  }));
  using agent = new Http1Agent();
  const headerOf = async () => {
    const reply = await agent.request(server.url, {
      method: "POST",
      headers: {},
      body: "{}",
      signal: new AbortController().signal,
    });
    await reply.bytes();
    return [reply.statusText, reply.headers.find(([name]) => name === "x-note")?.[1]];
  };
  assert.deepEqual(await headerOf(), ["OK", "plain ascii"]);
  assert.deepEqual(await headerOf(), ["Ol\u00e9", "caf\u00e9 \u0085"]);
});

test("http1: a TLS upstream is verified against the given roots and its connection kept alive", async () => {
  const here = new URL("../_support/tls/", import.meta.url);
  const cert = await Deno.readTextFile(new URL("cert.pem", here));
  const key = await Deno.readTextFile(new URL("key.pem", here));
  const ca = await Deno.readTextFile(new URL("ca.pem", here));
  let requests = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen: () => {} },
    () => Response.json({ n: ++requests }),
  );
  const url = `https://localhost:${server.addr.port}/v1/embeddings`;
  using trusting = new Http1Agent({ caCerts: [ca] });
  using strict = new Http1Agent();
  assert.deepEqual(await (await post(trusting, url)).json(), { n: 1 });
  assert.deepEqual(await (await post(trusting, url)).json(), { n: 2 });
  assert.equal(trusting.idleConnections, 1);
  await assert.rejects(post(strict, url), /certificate|tls|invalid peer/i, "an unknown root is refused");
});

test("http1: close() shuts the idle connections", async () => {
  const closed = Promise.withResolvers<void>();
  await using server = scriptedServer(async (conn) => {
    await serveEach(() => json("{}"))(conn);
    closed.resolve();
  });
  const agent = new Http1Agent();
  await (await post(agent, server.url)).text();
  assert.equal(agent.idleConnections, 1);
  agent.close();
  await closed.promise;
  assert.equal(agent.idleConnections, 0);
});

test("http1: bytes from the server on an idle connection (a 408 as it closes) spoil it; the next request goes elsewhere", async () => {
  const served: number[] = [];
  await using server = scriptedServer(async (conn, index) => {
    await conn.request();
    served.push(index);
    await conn.write(json(`{"conn":${index}}`));
    if (index === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await conn.write("HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    } else await conn.request();
  });
  using agent = new Http1Agent();
  assert.deepEqual(await (await post(agent, server.url)).json(), { conn: 0 });
  await new Promise((resolve) => setTimeout(resolve, 80));
  const second = await post(agent, server.url);
  assert.equal(second.status, 200, "the stray 408 is not taken for the answer");
  assert.deepEqual(await second.json(), { conn: 1 });
  assert.deepEqual(served, [0, 1]);
});

test("http1: a 408 in answer to a request on a reused connection (its idle timeout crossed the request) is not the answer: the request goes again on a new one", async () => {
  // The race of the test above, made certain: the server's 408 arrives only once the request went out.
  const served: number[] = [];
  const bodies: string[] = [];
  await using server = scriptedServer(async (conn, index) => {
    for (let count = 0; count < (index === 0 ? 2 : 1); count++) {
      bodies.push((await conn.request())?.body ?? "");
      served.push(index);
      if (index === 0 && count === 1) {
        await conn.write("HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      } else await conn.write(json(`{"conn":${index}}`));
    }
  });
  using agent = new Http1Agent();
  assert.deepEqual(await (await post(agent, server.url)).json(), { conn: 0 });
  const second = await post(agent, server.url, '{"second":true}');
  assert.equal(second.status, 200, "the 408 is not taken for the answer");
  assert.deepEqual(await second.json(), { conn: 1 });
  assert.deepEqual(served, [0, 0, 1]);
  assert.deepEqual(bodies, ["{}", '{"second":true}', '{"second":true}'], "a POST goes again, whole");
});

test("http1: the server's keep-alive timeout shortens how long its connections are kept", async () => {
  let answered = 0;
  await using server = scriptedServer(
    serveEach(() => json("{}", `keep-alive: timeout=${answered++ === 0 ? 1 : 5}\r\n`)),
  );
  using agent = new Http1Agent();
  await (await post(agent, server.url)).text();
  assert.equal(agent.idleConnections, 0, "timeout=1 leaves no safe time to reuse it");
  await (await post(agent, server.url)).text();
  assert.equal(agent.idleConnections, 1);
  assert.equal(server.accepted, 2);
});

test("http1: an abort mid-stream errors the body with the signal's reason, bytes already buffered or not", async () => {
  const answers = {
    "a read waiting on the socket": "6\r\nfirst\n\r\n",
    // A chunk too large for the shared slab has a buffer of its own: it is not joined to the one before.
    "the rest of the body already buffered": `6\r\nfirst\n\r\n7d0\r\n${"x".repeat(2000)}\r\n0\r\n\r\n`,
  };
  for (const [when, chunks] of Object.entries(answers)) {
    await using server = scriptedServer(async (conn) => {
      await conn.request();
      await conn.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${chunks}`);
      await conn.closedByClient();
    });
    using agent = new Http1Agent();
    const controller = new AbortController();
    const response = await post(agent, server.url, "{}", controller.signal);
    const reader = response.body!.getReader();
    assert.equal(decoder.decode((await reader.read()).value), "first\n");
    const next = reader.read();
    controller.abort(new DOMException("too slow", "TimeoutError"));
    await assert.rejects(next, (error: Error) => error.name === "TimeoutError", when);
    assert.equal(agent.idleConnections, 0, when);
  }
});

test("http1: a 205 drops whatever body it came with, and its connection", async () => {
  const closed = Promise.withResolvers<void>();
  await using server = scriptedServer(async (conn) => {
    await conn.request();
    await conn.write("HTTP/1.1 205 Reset Content\r\ntransfer-encoding: chunked\r\n\r\n");
    await conn.closedByClient();
    closed.resolve();
  });
  using agent = new Http1Agent();
  const response = await post(agent, server.url);
  assert.equal(response.status, 205);
  assert.equal(response.body, null);
  await closed.promise;
});

test("http1: an upstream that refuses a large body before reading it is heard (its 413), not a broken write", async () => {
  const refusal = '{"error":{"message":"too large"}}';
  await using server = scriptedServer(async (conn) => {
    await conn.head();
    await conn.write(
      `HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: ${refusal.length}\r\n\r\n${refusal}`,
    );
    // It never reads the body; it hangs up a little later.
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
  using agent = new Http1Agent();
  const response = await post(agent, server.url, JSON.stringify({ input: "x".repeat(16 * 1024 * 1024) }));
  assert.equal(response.status, 413);
  assert.equal(await response.text(), refusal);
  assert.equal(agent.idleConnections, 0, "a connection with a request half written is not reused");
});

test(
  "http1: a streamed answer is read off its source without a stream; given up there, its connection closes",
  {
    timeout: 10_000,
  },
  async () => {
    const next = Promise.withResolvers<void>();
    await using server = scriptedServer(async (conn) => {
      for (let answer = 0; answer < 2; answer++) {
        await conn.request();
        await conn.write(
          "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        await conn.write("d\r\ndata: first\n\n\r\n");
        if (answer === 1) return await conn.closedByClient();
        await next.promise;
        await conn.write("e\r\ndata: second\n\n\r\n0\r\n\r\n");
      }
    });
    using agent = new Http1Agent();
    const init = { method: "POST", headers: {}, body: "{}", signal: new AbortController().signal };
    const read = async (source: NonNullable<Reply["source"]>) => {
      for (;;) {
        const chunk = source.poll();
        if (chunk !== undefined) return chunk && decoder.decode(chunk);
        await waitFor(source);
      }
    };
    const whole = await agent.request(server.url, init);
    assert.ok(whole.source, "a streamed answer has a source");
    assert.equal(await read(whole.source), "data: first\n\n", "before the server sends more");
    next.resolve();
    assert.equal(await read(whole.source), "data: second\n\n");
    assert.equal(await read(whole.source), null);
    assert.equal(agent.idleConnections, 1, "read to its end, the connection is reusable");

    const left = await agent.request(server.url, init);
    assert.equal(await read(left.source!), "data: first\n\n");
    left.source!.cancel();
    assert.equal(agent.idleConnections, 0, "given up, the connection is not parked");
    assert.equal(server.accepted, 1);
    assert.equal(await read(left.source!), null, "a source given up is at its end");
  },
);

test("http1: chunks handed on stay as they were while the connection reads on and carries the next answers", async () => {
  // 400 events of about 100 bytes: several of the connection's 16 KiB read buffers, each event its own write.
  const events = Array.from(
    { length: 400 },
    (_, i) => `data: {"n":${i},"text":"${"abcdefghij".repeat(8)}"}\n\n`,
  );
  const chunk = (text: string) => `${encoder.encode(text).length.toString(16)}\r\n${text}\r\n`;
  await using server = scriptedServer(async (conn) => {
    for (let answer = 0; answer < 3; answer++) {
      await conn.request();
      await conn.write(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
      );
      for (const [i, event] of events.entries()) {
        await conn.write(chunk(answer === 0 ? event : event.replaceAll("a", "Z")));
        if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await conn.write("0\r\n\r\n");
    }
    await conn.request();
  });
  using agent = new Http1Agent();
  const held: Uint8Array[] = [];
  for (let answer = 0; answer < 3; answer++) {
    const response = await post(agent, server.url);
    // Every chunk is kept as it was handed on.
    for await (const bytes of response.body!) if (answer === 0) held.push(bytes);
  }
  assert.equal(server.accepted, 1, "one connection carried all three answers");
  assert.equal(held.map((bytes) => decoder.decode(bytes)).join(""), events.join(""));
});

test("http1: chunk sizes in either case, with spaces and extensions, are read; malformed ones fail the body", async () => {
  const good =
    "A\r\n0123456789\r\na \t\r\nabcdefghij\r\n5;name=value;x\r\nhello\r\n000000000002\r\nok\r\n0\r\n\r\n";
  const bad = [
    "g\r\nhello\r\n0\r\n\r\n",
    " 5\r\nhello\r\n0\r\n\r\n",
    "5 x\r\nhello\r\n0\r\n\r\n",
    "0000000000005\r\nhello\r\n0\r\n\r\n",
    "5;a\rb\r\nhello\r\n0\r\n\r\n",
    "\r\nhello\r\n0\r\n\r\n",
  ];
  const answers = [good, ...bad];
  await using server = scriptedServer(async (conn, index) => {
    await conn.request();
    await conn.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${answers[index]}`);
    await conn.request();
  });
  using agent = new Http1Agent();
  assert.equal(await (await post(agent, server.url)).text(), "0123456789abcdefghijhellook");
  for (const answer of bad) {
    const response = await post(agent, server.url);
    await assert.rejects(response.text(), (error: Error) => {
      assert.ok(error instanceof UpstreamProtocolError, `${JSON.stringify(answer)}: ${error}`);
      assert.match(error.message, /malformed chunk size/);
      return true;
    });
    assert.equal(agent.idleConnections, 0, "the connection of a malformed answer is not kept");
  }
});

test("http1: the chunks of one read come as one; the rest, an error and the end after them, in order", async () => {
  const large = "x".repeat(2000); // over the slab's largest copy: a buffer of its own, not joined
  const answers = [
    `6\r\nfirst\n\r\n7\r\nsecond\n\r\n7d0\r\n${large}\r\n5\r\nlast\n\r\n1\r\n!\r\n0\r\n\r\n`,
    "6\r\nfirst\n\r\n7\r\nsecond\n\r\nzz\r\nhello\r\n0\r\n\r\n",
  ];
  await using server = scriptedServer(async (conn, index) => {
    await conn.request();
    await conn.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${answers[index]}`);
    await conn.request();
  });
  using agent = new Http1Agent();
  const chunks = async (reader: ReadableStreamDefaultReader<Uint8Array>) => {
    const read: string[] = [];
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      read.push(decoder.decode(next.value));
    }
    return read;
  };
  // The large chunk takes reads of its own (as many as the buffer needs), whose pieces come as they are read.
  const read = await chunks((await post(agent, server.url)).body!.getReader());
  assert.equal(read[0], "first\nsecond\n");
  assert.equal(read.join(""), `first\nsecond\n${large}last\n!`);
  const reader = (await post(agent, server.url)).body!.getReader();
  assert.equal(decoder.decode((await reader.read()).value), "first\nsecond\n");
  await assert.rejects(reader.read(), /malformed chunk size/);
});

test("http1: a chunked answer read byte by byte is whole; cut anywhere before its end, the read fails", async () => {
  const body = "5\r\nhello\r\n1a;x=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\ntrailer: yes\r\n\r\n";
  const head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
  // Connection 0 sends the whole answer one byte per write; connection i > 0 sends its first i - 1 bytes and closes.
  await using server = scriptedServer(async (conn, index) => {
    await conn.request();
    await conn.write(head);
    if (index > 0) return await conn.write(body.slice(0, index - 1));
    for (const byte of body) {
      await conn.write(byte);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  });
  using agent = new Http1Agent();
  assert.equal(await (await post(agent, server.url)).text(), "helloabcdefghijklmnopqrstuvwxyz");
  for (let cut = 0; cut < body.length; cut++) {
    const response = await post(agent, server.url);
    await assert.rejects(response.text(), (error: Error) => {
      assert.ok(error instanceof UpstreamProtocolError, `cut at ${cut}: ${error}`);
      assert.match(error.message, /closed the connection mid-answer/);
      return true;
    });
  }
});

test("http1: an answer framed by the connection's close ends cleanly at the close", async () => {
  await using server = scriptedServer(async (conn) => {
    await conn.request();
    await conn.write("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
    for (const part of ["data: a\n\n", "data: b\n\n"]) {
      await conn.write(part);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });
  using agent = new Http1Agent();
  assert.equal(await (await post(agent, server.url)).text(), "data: a\n\ndata: b\n\n");
});
