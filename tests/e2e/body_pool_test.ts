/**
 * Request bodies and uploads held in memory share one bound, `max_inflight_body_bytes`: a JSON body reserved by
 * its length and the bytes an upload holds (a form read ahead to its `model`, a small upload read whole) count in
 * the same pool, so together they never pass it (before, uploads had a pool of their own, as large: twice the
 * bytes). What an upload streams without holding does not count. The pool frees when requests end, fail or are cut.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import { LiveApp } from "../../src/live_app.ts";
import { createLogger } from "../../src/logger.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, type RunningProxy, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const MiB = 1024 * 1024;
const boundary = "body-pool-boundary";
const encoder = new TextEncoder();
const formType = { "content-type": `multipart/form-data; boundary=${boundary}` };
const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`;
const field = (name: string, value: string) =>
  `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;

/** A form of `bytes` of file, then `model` once `gate` resolves (chunked: no declared length). */
function gatedForm(bytes: number, gate: Promise<void>): ReadableStream<Uint8Array> {
  let pieces = bytes / (64 * 1024);
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        return controller.enqueue(encoder.encode(fileHead));
      }
      if (pieces-- > 0) return controller.enqueue(new Uint8Array(64 * 1024).fill(120));
      await gate;
      controller.enqueue(encoder.encode(`\r\n${field("model", "gpt-test")}--${boundary}--\r\n`));
      controller.close();
    },
  });
}

/** A whole form: `fields` then a file of `bytes` (or the file first). */
const form = (fields: [string, string][], bytes: number, fileFirst = false) => {
  const text = fields.map(([name, value]) => field(name, value)).join("");
  const file = [fileHead, new Uint8Array(bytes).fill(120), "\r\n"];
  return new Blob(
    fileFirst ? [...file, text, `--${boundary}--\r\n`] : [text, ...file, `--${boundary}--\r\n`],
  );
};

const chat = (padding: number) =>
  JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "x".repeat(padding) }] });

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await delay(25);
  assert.ok(ok(), what);
}

async function busy(response: Response, what: string): Promise<void> {
  assert.equal(response.status, 503, what);
  assert.equal(response.headers.get("retry-after"), "1", what);
  const { error } = await response.json();
  assert.equal(error.code, "server_busy", what);
  assert.match(error.message, /max_inflight_body_bytes/, what);
}

function post(proxy: RunningProxy, path: string, body: BodyInit, headers: Record<string, string> = {}) {
  return fetch(`${proxy.url}/v1/${path}`, { method: "POST", headers, body });
}

test("JSON bodies and held uploads share one bound; what an upload streams unheld does not count", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${6 * MiB}`,
      `max_inflight_body_bytes: ${8 * MiB}`,
    ]),
    { logLevel: "error" },
  );
  const pool = proxy.services.bodyPool;

  // A form read ahead to its `model` holds 6 MiB: a 3 MiB JSON body does not fit beside it, a 1 MiB one does.
  let open!: () => void;
  const held = post(
    proxy,
    "audio/transcriptions",
    gatedForm(6 * MiB, new Promise((r) => open = r)),
    formType,
  );
  try {
    await until("the form's file is held", () => pool.held >= 6 * MiB);
    await busy(await post(proxy, "chat/completions", chat(3 * MiB)), "3 MiB of JSON beside a 6 MiB form");
    const small = await post(proxy, "chat/completions", chat(MiB));
    assert.equal(small.status, 200);
    await small.body?.cancel();
  } finally {
    open();
  }
  const form1 = await held;
  assert.equal(form1.status, 200, "the held form, accepted, is answered");
  assert.match((await form1.json()).text, /heard \d+ bytes of a\.wav/);
  await until(`given back: ${pool.held}`, () => pool.held === 0);

  // A 5 MiB JSON body in flight: a small upload read whole (3 MiB) does not fit beside it; a 20 MiB upload that
  // streams holds nothing and passes.
  sim.latencyMs = 1500;
  const json = post(proxy, "chat/completions", chat(5 * MiB));
  try {
    await until("the JSON body is reserved", () => pool.held >= 5 * MiB);
    await busy(
      await post(proxy, "files", form([["purpose", "user_data"]], 3 * MiB), formType),
      "a 3 MiB file beside 5 MiB of JSON",
    );
    const streamed = await post(proxy, "files", form([["purpose", "user_data"]], 20 * MiB), formType);
    assert.equal(streamed.status, 200, "a streamed upload is not held");
    await streamed.body?.cancel();
  } finally {
    sim.latencyMs = 0;
  }
  const answered = await json;
  assert.equal(answered.status, 200, "the JSON request, accepted, is answered");
  await answered.body?.cancel();
  await until(`given back: ${pool.held}`, () => pool.held === 0);
});

test("the body pool frees when requests end, fail or are cut", { timeout: 60_000 }, async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${4 * MiB}`,
      `max_inflight_body_bytes: ${8 * MiB}`,
    ]),
    { logLevel: "error" },
  );
  const pool = proxy.services.bodyPool;
  const freed = (what: string) => until(`${what}: ${pool.held} bytes still held`, () => pool.held === 0);

  // Cut by the client while its body arrives: a JSON body, a form read ahead.
  const cuts: [string, (signal: AbortSignal) => Promise<Response>][] = [
    ["a chunked JSON body half sent", (signal) =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        signal,
        body: gatedBody(encoder.encode(chat(MiB).slice(0, MiB / 2))),
      })],
    ["a form read ahead", (signal) =>
      fetch(`${proxy.url}/v1/audio/transcriptions`, {
        method: "POST",
        signal,
        headers: formType,
        body: gatedForm(2 * MiB, new Promise(() => {})),
      })],
  ];
  for (const [what, send] of cuts) {
    const cut = new AbortController();
    const sent = send(cut.signal).catch((error) => error);
    await until(`${what}: held`, () => pool.held > 0);
    cut.abort();
    await sent;
    await freed(what);
  }
  sim.reset();
  // After all that, the whole pool is there again: 7 MiB at once.
  const answers = await Promise.all([
    post(proxy, "chat/completions", chat(3.5 * MiB)),
    post(proxy, "files", form([["purpose", "user_data"]], 3.5 * MiB), formType),
  ]);
  assert.deepEqual(answers.map((answer) => answer.status), [200, 200]);
  for (const answer of answers) await answer.body?.cancel();

  // Failed: the upstream answers 400 or 500 to a JSON body, a small upload and a form (400 first: the 500s cool
  // the endpoint down).
  for (const status of [400, 500]) {
    sim.reset();
    sim.always({ kind: "status", status });
    const answers = await Promise.all([
      post(proxy, "chat/completions", chat(2 * MiB)),
      post(proxy, "files", form([["purpose", "user_data"]], 2 * MiB), formType),
      post(proxy, "audio/transcriptions", form([["model", "gpt-test"]], 2 * MiB, true), formType),
    ]);
    for (const answer of answers) {
      assert.ok(answer.status >= 400, `${answer.url}: ${answer.status}`);
      await answer.body?.cancel();
    }
    await freed(`after ${status}s`);
  }
});

/** `head`, then nothing more until the request is cut. */
function gatedBody(head: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent) return await new Promise<void>(() => {});
      sent = true;
      controller.enqueue(head);
    },
  });
}

test("a body larger than the whole bound is a final 413, or streams when it can; never a 503 to retry", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${4 * MiB}`,
      `max_inflight_body_bytes: ${2 * MiB}`,
    ]),
    { logLevel: "error" },
  );
  const tooLarge = async (response: Response, what: string, message: RegExp) => {
    assert.equal(response.status, 413, what);
    assert.equal(response.headers.get("retry-after"), null, what);
    const { error } = await response.json();
    assert.equal(error.code, "request_too_large", what);
    assert.match(error.message, /max_inflight_body_bytes/, what);
    assert.match(error.message, message, what);
  };
  // A form sending a 3 MiB file before `model`: it would have to be held whole, and cannot be, at any try.
  for (let i = 0; i < 2; i++) {
    await tooLarge(
      await post(proxy, "audio/transcriptions", form([["model", "gpt-test"]], 3 * MiB, true), formType),
      "a file-first form",
      /send 'model' before the file/,
    );
  }
  // `model` first, or the group in the header: the same file streams.
  const modelFirst = await post(
    proxy,
    "audio/transcriptions",
    form([["model", "gpt-test"]], 3 * MiB),
    formType,
  );
  assert.equal(modelFirst.status, 200);
  await modelFirst.body?.cancel();
  const named = await post(proxy, "audio/transcriptions", form([["model", "gpt-test"]], 3 * MiB, true), {
    ...formType,
    "x-llmproxy-model-group": "gpt-test",
  });
  assert.equal(named.status, 200);
  await named.body?.cancel();
  // A 3 MiB file (small enough to be read whole, were the bound larger) streams instead.
  const file = await post(proxy, "files", form([["purpose", "user_data"]], 3 * MiB), formType);
  assert.equal(file.status, 200);
  await file.body?.cancel();
  // JSON: declared larger than the bound, or of unknown length and growing past it while it arrives (3 MiB);
  // a small one of unknown length is served (it takes only what it holds, no longer `max_body_bytes`).
  await tooLarge(await post(proxy, "chat/completions", chat(3 * MiB)), "3 MiB of JSON", /this body/);
  const chunked = (padding: number) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body: ReadableStream.from([encoder.encode(chat(padding))]),
    });
  await tooLarge(await chunked(3 * MiB), "3 MiB of chunked JSON", /of unknown length/);
  const small = await chunked(10);
  assert.equal(small.status, 200, "a small chunked JSON body");
  await small.body?.cancel();
  assert.equal(proxy.services.bodyPool.held, 0);
});

test("bytes held across a config reload still count: requests on the new config see the old ones'", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  const yaml = (max: number) =>
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${6 * MiB}`,
      `max_inflight_body_bytes: ${max}`,
    ]);
  const load = (max: number) => () => Promise.resolve(parseConfig(yaml(max), "test.yaml", () => undefined));
  const live = await LiveApp.start(await load(8 * MiB)(), {
    logger: createLogger({ level: "error", write: () => {} }),
  });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, live.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const send = (padding: number) =>
    fetch(`${url}/v1/chat/completions`, { method: "POST", body: chat(padding) });
  try {
    // 5 MiB held through a reload (to a bound of 9 MiB): 5 MiB more does not fit on the new config's app.
    sim.latencyMs = 1500;
    const first = send(5 * MiB);
    await until("the first body is reserved", () => live.services.bodyPool.held >= 5 * MiB);
    assert.ok(await live.reload(load(9 * MiB)));
    await busy(await send(5 * MiB), "5 MiB beside 5 MiB held from before the reload");
    sim.latencyMs = 0;
    const answered = await first;
    assert.equal(answered.status, 200);
    await answered.body?.cancel();
    await until("given back", () => live.services.bodyPool.held === 0);
    const after = await send(5 * MiB);
    assert.equal(after.status, 200);
    await after.body?.cancel();
  } finally {
    sim.latencyMs = 0;
    await live.close();
  }
});
