import assert from "node:assert/strict";
import OpenAI, { APIError, AzureOpenAI, BadRequestError, NotFoundError, RateLimitError } from "openai";
import { SimUpstream, type SimUpstreamOptions } from "../../src/sim/upstream.ts";
import { test } from "../_support/test.ts";

const start = (options: SimUpstreamOptions = {}) =>
  SimUpstream.start({ name: "east", quiet: true, ...options });
const openai = (sim: SimUpstream) => new OpenAI({ baseURL: sim.url + "/v1", apiKey: "test", maxRetries: 0 });
const hello = [{ role: "user" as const, content: "hello" }];

/** POSTs JSON with a bearer key; the caller consumes the body. */
const post = (sim: SimUpstream, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(sim.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer test", ...headers },
    body: JSON.stringify(body),
  });

/** Reads an SSE body to the end, returning the `data:` payloads. */
async function sseData(response: Response): Promise<string[]> {
  const text = await response.text();
  return text.split("\n\n").filter(Boolean).map((frame) =>
    frame.split("\n").find((l) => l.startsWith("data: "))!.slice(6)
  );
}

test("chat: JSON answer names the sim, echoes the user and reports usage", async () => {
  await using sim = await start();
  const { data, response } = await openai(sim).chat.completions
    .create({ model: "gpt-4o-mini", messages: hello })
    .withResponse();
  assert.equal(data.object, "chat.completion");
  assert.equal(data.model, "gpt-4o-mini");
  assert.equal(data.choices[0].message.content, "[east] echo: hello");
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.ok(
    data.usage && data.usage.total_tokens === data.usage.prompt_tokens + data.usage.completion_tokens,
  );
  assert.equal(response.headers.get("x-sim-name"), "east");
});

test("chat: the SDK iterator sees the role, every content chunk, the finish and the usage chunk", async () => {
  await using sim = await start({ chunks: 4 });
  const stream = await openai(sim).chat.completions.create({
    model: "m",
    messages: hello,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 1 + 4 + 1 + 1);
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "[east] echo: hello");
  assert.equal(chunks[5].choices[0].finish_reason, "stop");
  assert.deepEqual(chunks[6].choices, []);
  assert.ok(chunks[6].usage!.total_tokens > 0);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
});

test("chat: a stream without include_usage ends with the finish chunk and [DONE]", async () => {
  await using sim = await start();
  const data = await sseData(
    await post(sim, "/v1/chat/completions", { model: "m", messages: hello, stream: true }),
  );
  assert.equal(data.length, 1 + 5 + 1 + 1);
  assert.equal(data.at(-1), "[DONE]");
  assert.equal(JSON.parse(data.at(-2)!).choices[0].finish_reason, "stop");
  assert.ok(data.slice(0, -1).every((d) => !("usage" in JSON.parse(d))));
});

test("chat: with chunkDelayMs the first frame arrives before the rest", async () => {
  await using sim = await start();
  sim.chunkDelayMs = 40;
  const began = performance.now();
  const response = await post(sim, "/v1/chat/completions", { model: "m", messages: hello, stream: true });
  const reader = response.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  const firstAt = performance.now() - began;
  assert.match(first, /^data: .*"role":"assistant"/);
  while (!(await reader.read()).done) { /* drain */ }
  const total = performance.now() - began;
  // Measured from the stream's end, not the request's start (a loaded machine delays both alike): the first frame
  // comes at least 5 of the 6 intervals before the last, as it could not if the stream were held back.
  assert.ok(total - firstAt >= 5 * 40 - 10, `first frame after ${firstAt} ms of ${total}`);
  assert.ok(total >= 6 * 40 - 10, `whole stream in ${total} ms`);
});

test("chat: tools give a function call, streamed as argument deltas; a tool result gives text", async () => {
  await using sim = await start();
  const client = openai(sim);
  const tools = [{
    type: "function" as const,
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } },
    },
  }];
  const plain = await client.chat.completions.create({ model: "m", messages: hello, tools });
  const call = plain.choices[0].message.tool_calls![0];
  assert.equal(plain.choices[0].finish_reason, "tool_calls");
  assert.ok(call.type === "function");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "hello", days: 1 });

  const stream = await client.chat.completions.create({ model: "m", messages: hello, tools, stream: true });
  let args = "";
  let pieces = 0;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments;
    if (delta) (args += delta, pieces++);
  }
  assert.equal(pieces, 5);
  assert.deepEqual(JSON.parse(args), { city: "hello", days: 1 });

  const after = await client.chat.completions.create({
    model: "m",
    tools,
    messages: [...hello, { role: "assistant", tool_calls: [call] }, {
      role: "tool",
      tool_call_id: call.id,
      content: "sunny",
    }],
  });
  assert.equal(after.choices[0].message.content, "[east] tool said: sunny");
});

test("chat: reasoning_effort adds reasoning_content deltas to the first chunks", async () => {
  await using sim = await start();
  const body = { model: "o", messages: hello, stream: true, reasoning_effort: "low" };
  const data = (await sseData(await post(sim, "/v1/chat/completions", body))).slice(0, -1).map((d) =>
    JSON.parse(d)
  );
  const reasoning = data.map((c) => c.choices[0]?.delta.reasoning_content ?? "").join("");
  assert.ok(data[0].choices[0].delta.reasoning_content);
  assert.match(reasoning, /low effort/);
  assert.equal(data.map((c) => c.choices[0]?.delta.content ?? "").join(""), "[east] echo: hello");
});

test("responses: JSON answer, then retrieve, list input items and delete it", async () => {
  await using sim = await start();
  const client = openai(sim);
  const response = await client.responses.create({ model: "gpt-4o-mini", input: "hello there" });
  assert.match(response.id, /^resp_east_/);
  assert.equal(response.status, "completed");
  assert.equal(response.model, "gpt-4o-mini");
  assert.equal(response.output_text, "[east] echo: hello there");
  assert.ok(response.usage!.total_tokens > 0);
  const wire = await (await fetch(`${sim.url}/v1/responses/${response.id}`, { headers: { "api-key": "k" } }))
    .json();
  assert.equal("output_text" in wire, false, "output_text is computed by the SDK, not sent");

  const again = await client.responses.retrieve(response.id);
  assert.equal(again.output_text, response.output_text);
  const items = await client.responses.inputItems.list(response.id);
  assert.equal(items.data.length, 1);
  const [item] = items.data;
  assert.ok(item.type === "message" && item.role === "user");
  assert.deepEqual(item.content, [{ type: "input_text", text: "hello there" }]);

  await client.responses.delete(response.id);
  await assert.rejects(client.responses.retrieve(response.id), NotFoundError);
});

test("responses: the SDK stream helper sees every typed event and builds the final response", async () => {
  await using sim = await start({ chunks: 3 });
  const stream = openai(sim).responses.stream({
    model: "m",
    input: [{ role: "user", content: "stream me" }],
  });
  const types: string[] = [];
  for await (const event of stream) {
    assert.equal(event.sequence_number, types.length);
    types.push(event.type);
  }
  const final = await stream.finalResponse();
  assert.deepEqual(types, [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
  ]);
  assert.equal(final.output_text, "[east] echo: stream me");
  assert.equal(final.status, "completed");
});

test("responses: raw stream frames carry event lines that match the data's type", async () => {
  await using sim = await start();
  const text = await (await post(sim, "/v1/responses", { model: "m", input: "x", stream: true })).text();
  const frames = text.split("\n\n").filter(Boolean);
  for (const frame of frames) {
    const [event, data] = frame.split("\n");
    assert.equal(event.slice("event: ".length), JSON.parse(data.slice("data: ".length)).type);
  }
  assert.match(frames.at(-1)!, /^event: response.completed\n/);
});

test("responses: previous_response_id works on the sim that made it and is a 400 elsewhere", async () => {
  await using east = await start();
  await using west = await start({ name: "west" });
  const first = await openai(east).responses.create({ model: "m", input: "one" });
  const second = await openai(east).responses.create({
    model: "m",
    input: "two",
    previous_response_id: first.id,
  });
  assert.equal(second.previous_response_id, first.id);
  assert.equal(second.output_text, "[east] echo: two");

  const error = await openai(west).responses.create({
    model: "m",
    input: "two",
    previous_response_id: first.id,
  })
    .then(() => undefined, (e) => e);
  assert.ok(error instanceof BadRequestError);
  assert.equal(error.code, "previous_response_not_found");
  assert.equal(error.param, "previous_response_id");
  assert.equal(error.message, `400 Previous response with id '${first.id}' not found.`);
});

test("responses: encrypted reasoning is readable only by the sim that issued it", async () => {
  await using east = await start();
  await using west = await start({ name: "west" });
  const first = await openai(east).responses.create({
    model: "o",
    input: "think",
    store: false,
    include: ["reasoning.encrypted_content"],
  });
  const reasoning = first.output.find((item) => item.type === "reasoning");
  assert.ok(reasoning?.type === "reasoning");
  assert.match(reasoning.encrypted_content!, /^enc_east_/);
  assert.equal(await openai(east).responses.retrieve(first.id).catch((e) => e.status), 404, "store: false");

  const input: OpenAI.Responses.ResponseInput = [
    { role: "user", content: "think" },
    reasoning,
    ...(first.output.slice(1) as OpenAI.Responses.ResponseInputItem[]),
    { role: "user", content: "more" },
  ];
  const ok = await openai(east).responses.create({ model: "o", input });
  assert.equal(ok.output_text, "[east] echo: more");
  const error = await openai(west).responses.create({ model: "o", input }).then(() => undefined, (e) => e);
  assert.ok(error instanceof BadRequestError);
  assert.equal(error.code, "invalid_encrypted_content");
});

test("responses: text.format json_schema is echoed and answered with matching JSON", async () => {
  await using sim = await start();
  const format = {
    type: "json_schema" as const,
    name: "answer",
    strict: true,
    schema: {
      type: "object",
      properties: {
        city: { type: "string" },
        hot: { type: "boolean" },
        tags: { type: "array", items: { type: "string" } },
      },
      required: ["city", "hot", "tags"],
      additionalProperties: false,
    },
  };
  const response = await openai(sim).responses.create({ model: "m", input: "Paris", text: { format } });
  assert.deepEqual(response.text?.format, format);
  assert.deepEqual(JSON.parse(response.output_text), { city: "Paris", hot: true, tags: ["Paris"] });
});

test("responses: tools give a function_call item, streamed as argument deltas", async () => {
  await using sim = await start();
  const tools = [{
    type: "function" as const,
    name: "lookup",
    strict: true,
    parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
  }];
  const plain = await openai(sim).responses.create({ model: "m", input: "find", tools });
  const call = plain.output[0];
  assert.ok(call.type === "function_call");
  assert.equal(call.name, "lookup");
  assert.match(call.call_id, /^call_east_/);
  assert.deepEqual(JSON.parse(call.arguments), { q: "find" });

  const stream = openai(sim).responses.stream({ model: "m", input: "find", tools });
  let deltas = 0;
  for await (const event of stream) if (event.type === "response.function_call_arguments.delta") deltas++;
  const final = await stream.finalResponse();
  assert.equal(deltas, 5);
  const streamed = final.output[0];
  assert.ok(streamed.type === "function_call");
  assert.deepEqual(JSON.parse(streamed.arguments), { q: "find" });

  const answer = await openai(sim).responses.create({
    model: "m",
    tools,
    previous_response_id: plain.id,
    input: [{ type: "function_call_output", call_id: call.call_id, output: "42" }],
  });
  assert.equal(answer.output_text, "[east] tool said: 42");
});

test("embeddings: deterministic small vectors, as floats or the SDK's default base64", async () => {
  await using sim = await start();
  const viaSdk = await openai(sim).embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
  assert.equal(viaSdk.object, "list");
  assert.equal(viaSdk.model, "text-embedding-3-small");
  assert.deepEqual(viaSdk.data.map((d) => d.index), [0, 1]);
  assert.ok(viaSdk.usage.total_tokens > 0);
  const raw = await (await post(sim, "/v1/embeddings", { model: "e", input: "a", encoding_format: "float" }))
    .json();
  assert.equal(raw.data.length, 1);
  assert.equal(raw.data[0].embedding.length, 8);
  assert.deepEqual(Array.from(viaSdk.data[0].embedding), raw.data[0].embedding);
  assert.notDeepEqual(Array.from(viaSdk.data[1].embedding), raw.data[0].embedding);
  assert.ok(raw.data[0].embedding.every((v: number) => Math.abs(v) <= 0.5));
});

test("models: a list with one model", async () => {
  await using sim = await start({ model: "sim-model" });
  const models = [];
  for await (const model of openai(sim).models.list()) models.push(model.id);
  assert.deepEqual(models, ["sim-model"]);
});

test("azure classic: deployment paths with api-version and the api-key header", async () => {
  await using sim = await start({ name: "az" });
  const client = new AzureOpenAI({
    endpoint: sim.url,
    apiKey: "azure-key",
    apiVersion: "2024-10-21",
    deployment: "my dep",
    maxRetries: 0,
  });
  const chat = await client.chat.completions.create({ model: "ignored", messages: hello });
  assert.equal(chat.model, "my dep");
  const embedded = await client.embeddings.create({ model: "ignored", input: "x" });
  assert.equal(embedded.data[0].embedding.length, 8);
  const response = await client.responses.create({ model: "resp-dep", input: "hi" });
  assert.equal(response.model, "resp-dep");
  assert.equal((await client.responses.retrieve(response.id)).id, response.id);

  assert.deepEqual(sim.requests.map((r) => [r.method, r.path, r.search, r.auth]), [
    ["POST", "/openai/deployments/my%20dep/chat/completions", "?api-version=2024-10-21", "api-key"],
    ["POST", "/openai/deployments/my%20dep/embeddings", "?api-version=2024-10-21", "api-key"],
    ["POST", "/openai/responses", "?api-version=2024-10-21", "api-key"],
    ["GET", `/openai/responses/${response.id}`, "?api-version=2024-10-21", "api-key"],
  ]);
  assert.equal(sim.requests[0].headers["api-key"], "azure-key");
  assert.equal(sim.requests[0].headers.authorization, undefined);
});

test("azure classic: no api-version is a 400, chat outside a deployment a 404", async () => {
  await using sim = await start();
  const missing = await post(sim, "/openai/deployments/d/chat/completions", { messages: hello }, {
    "api-key": "k",
  });
  assert.equal(missing.status, 400);
  assert.equal((await missing.json()).error.code, "missing_api_version");
  const nowhere = await post(sim, "/openai/chat/completions?api-version=1", { model: "m", messages: hello });
  assert.equal(nowhere.status, 404);
  await nowhere.body!.cancel();
});

test("azure v1: /openai/v1 routes answer like OpenAI's", async () => {
  await using sim = await start();
  const client = new OpenAI({ baseURL: sim.url + "/openai/v1", apiKey: "k", maxRetries: 0 });
  const chat = await client.chat.completions.create({ model: "dep", messages: hello });
  assert.equal(chat.model, "dep");
  const response = await client.responses.create({ model: "dep", input: "hi" });
  assert.equal(response.output_text, "[east] echo: hi");
  const embedded = await client.embeddings.create({ model: "dep", input: "x" });
  assert.equal(embedded.data.length, 1);
  assert.deepEqual(sim.requests.map((r) => r.path), [
    "/openai/v1/chat/completions",
    "/openai/v1/responses",
    "/openai/v1/embeddings",
  ]);
});

test("auth: no key is a 401 in the OpenAI envelope", async () => {
  await using sim = await start();
  const response = await fetch(sim.url + "/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({ model: "m", messages: hello }),
  });
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("x-sim-name"), "east");
  const body = await response.json();
  assert.equal(body.error.code, "invalid_api_key");
  assert.equal(body.error.param, null);
  assert.equal(sim.last?.auth, null);
});

test("recording: method, path, lower-cased headers, parsed body, auth kind and counts", async () => {
  await using sim = await start();
  await (await post(sim, "/v1/chat/completions", { model: "a", messages: hello }, { "X-Custom": "1" })).body!
    .cancel();
  await (await post(sim, "/v1/responses", { model: "b", input: "x" }, { "api-key": "k" })).body!.cancel();
  await (await fetch(sim.url + "/v1/models", { headers: { authorization: "Bearer t" } })).body!.cancel();
  assert.equal(sim.count(), 3);
  assert.equal(sim.count("/responses"), 1);
  const [chat, responses, models] = sim.requests;
  assert.equal(chat.method, "POST");
  assert.equal(chat.headers["x-custom"], "1");
  assert.equal(chat.auth, "bearer");
  assert.deepEqual(chat.body, { model: "a", messages: hello });
  assert.equal(responses.auth, "api-key");
  assert.equal((responses.body as { model: string }).model, "b");
  assert.equal(models.method, "GET");
  assert.equal(models.body, undefined);
  assert.ok(models.at >= chat.at);
  sim.reset();
  assert.equal(sim.count(), 0);
});

test("behaviour status: one-shot 500 then ok; 429 carries retry-after", async () => {
  await using sim = await start();
  const client = openai(sim);
  sim.next({ kind: "status", status: 500 }, {
    kind: "status",
    status: 429,
    headers: { "retry-after": "2" },
  });
  const failed = await client.chat.completions.create({ model: "m", messages: hello }).catch((e) => e);
  assert.ok(failed instanceof APIError);
  assert.equal(failed.status, 500);
  const limited = await client.chat.completions.create({ model: "m", messages: hello }).catch((e) => e);
  assert.ok(limited instanceof RateLimitError);
  assert.equal(limited.headers?.get("retry-after"), "2");
  assert.equal(limited.code, "rate_limit_exceeded");
  const ok = await client.chat.completions.create({ model: "m", messages: hello });
  assert.equal(ok.choices[0].message.content, "[east] echo: hello");
});

test("behaviour status: always() persists with a custom body until reset()", async () => {
  await using sim = await start();
  sim.always({ kind: "status", status: 503, body: { error: { message: "down", type: "x", code: "down" } } });
  for (let i = 0; i < 2; i++) {
    const response = await post(sim, "/v1/embeddings", { model: "e", input: "x" });
    assert.equal(response.status, 503);
    assert.equal((await response.json()).error.message, "down");
  }
  sim.reset();
  const response = await post(sim, "/v1/embeddings", { model: "e", input: "x" });
  assert.equal(response.status, 200);
  await response.body!.cancel();
});

test("behaviour hang: the client's timeout aborts it and nothing leaks", async () => {
  await using sim = await start();
  sim.next({ kind: "hang" });
  const error = await fetch(sim.url + "/v1/models", {
    headers: { authorization: "Bearer t" },
    signal: AbortSignal.timeout(50),
  }).catch((e) => e);
  assert.equal(error.name, "TimeoutError");
  // The next request is answered: a second hang would take it to the 10 s timeout (not 50 ms, which a loaded
  // machine's answer alone could pass, load 16-20 in session 20).
  const timedOut = await openai(sim).withOptions({ timeout: 10_000, maxRetries: 0 }).models.list().then(
    () => undefined,
    (e) => e,
  );
  assert.equal(timedOut, undefined, "the queue held one hang only");
});

test("behaviour hang: closing the sim answers the hanging request with a 503", async () => {
  const sim = await start();
  sim.always({ kind: "hang" });
  const pending = fetch(sim.url + "/v1/models", { headers: { authorization: "Bearer t" } });
  while (sim.count() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  await Promise.all([
    sim.close(),
    pending.then(async (response) => {
      assert.equal(response.status, 503);
      await response.body!.cancel();
    }),
  ]);
});

test("behaviour cut: the SDK iterator throws after the first chunks", async () => {
  await using sim = await start();
  sim.next({ kind: "cut", afterChunks: 3 });
  const stream = await openai(sim).chat.completions.create({ model: "m", messages: hello, stream: true });
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? "");
  });
  assert.equal(seen.length, 3);
});

test("behaviour cut: a Responses stream never reaches response.completed", async () => {
  await using sim = await start();
  sim.next({ kind: "cut", afterChunks: 100 });
  const stream = openai(sim).responses.stream({ model: "m", input: "x" });
  const types: string[] = [];
  await assert.rejects(async () => {
    for await (const event of stream) types.push(event.type);
  });
  await stream.finalResponse().catch(() => {});
  assert.ok(types.length > 0 && !types.includes("response.completed"));
});

test("behaviour cut: a JSON answer ends without a body", async () => {
  await using sim = await start();
  sim.next({ kind: "cut", afterChunks: 0 });
  const response = await post(sim, "/v1/chat/completions", { model: "m", messages: hello });
  assert.equal(response.status, 200);
  await assert.rejects(response.json());
});

test("behaviour malformed: a 200 whose JSON does not parse", async () => {
  await using sim = await start();
  sim.next({ kind: "malformed" }, { kind: "malformed" });
  const response = await post(sim, "/v1/chat/completions", { model: "m", messages: hello });
  assert.equal(response.status, 200);
  await assert.rejects(response.json(), SyntaxError);
  await assert.rejects(openai(sim).chat.completions.create({ model: "m", messages: hello }));
});

test("options: responseHeaders on every answer, latency and chunk count changeable at run time", async () => {
  await using sim = await start({ responseHeaders: { "x-ratelimit-remaining-requests": "9" } });
  const first = await post(sim, "/v1/chat/completions", { model: "m", messages: hello });
  assert.equal(first.headers.get("x-ratelimit-remaining-requests"), "9");
  await first.body!.cancel();
  sim.next({ kind: "status", status: 404 });
  const missing = await post(sim, "/v1/chat/completions", { model: "m", messages: hello });
  assert.equal(missing.headers.get("x-ratelimit-remaining-requests"), "9");
  assert.equal(missing.headers.get("x-sim-name"), "east");
  await missing.body!.cancel();

  sim.responseHeaders = { "x-ratelimit-remaining-tokens": "0" };
  sim.latencyMs = 60;
  sim.chunks = 2;
  const began = performance.now();
  const slow = await post(sim, "/v1/chat/completions", { model: "m", messages: hello, stream: true });
  assert.ok(performance.now() - began >= 55);
  assert.equal(slow.headers.get("x-ratelimit-remaining-tokens"), "0");
  assert.equal(slow.headers.get("x-ratelimit-remaining-requests"), null);
  assert.equal((await sseData(slow)).length, 1 + 2 + 1 + 1);
});

test("streams: a client that cancels a slow stream stops its timers", async () => {
  await using sim = await start({ chunkDelayMs: 500 });
  const response = await post(sim, "/v1/chat/completions", { model: "m", messages: hello, stream: true });
  const reader = response.body!.getReader();
  assert.match(new TextDecoder().decode((await reader.read()).value), /"role":"assistant"/);
  const began = performance.now();
  await reader.cancel();
  await sim.close();
  assert.ok(performance.now() - began < 300, "close did not wait for the paused stream");
});

test("streams: closing the sim errors a paused stream at once", async () => {
  const sim = await start({ chunkDelayMs: 2000 });
  const response = await post(sim, "/v1/responses", { model: "m", input: "x", stream: true });
  const reader = response.body!.getReader();
  await reader.read();
  const began = performance.now();
  await Promise.all([
    sim.close(),
    assert.rejects(async () => {
      while (!(await reader.read()).done) { /* until the cut */ }
    }),
  ]);
  assert.ok(performance.now() - began < 1000);
});

test("start: a port in use rejects with a message naming the sim and the address", async () => {
  await using sim = await start();
  await assert.rejects(
    start({ name: "twin", port: sim.port }),
    /Cannot start sim upstream 'twin' on 127\.0\.0\.1:\d+/,
  );
});
