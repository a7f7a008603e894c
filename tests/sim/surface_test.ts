import assert from "node:assert/strict";
import OpenAI, { AzureOpenAI, BadRequestError, NotFoundError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { SPEECH_PIECE_BYTES } from "../../src/sim/audio.ts";
import { test } from "../_support/test.ts";

const start = (name = "east") => SimUpstream.start({ name, quiet: true, chunks: 3 });
const openai = (sim: SimUpstream) => new OpenAI({ baseURL: sim.url + "/v1", apiKey: "test", maxRetries: 0 });
const azure = (sim: SimUpstream, deployment?: string) =>
  new AzureOpenAI({
    endpoint: sim.url,
    apiKey: "test",
    apiVersion: "2025-04-01-preview",
    deployment,
    maxRetries: 0,
  });
const jsonl = (lines: unknown[]) => lines.map((line) => JSON.stringify(line)).join("\n") + "\n";
const chatLine = (id: string) => ({
  custom_id: id,
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `hi ${id}` }] },
});

test("files: upload, list, retrieve, content and delete; another sim does not know the file", async () => {
  await using sim = await start();
  await using other = await start("west");
  const client = openai(sim);
  const content = jsonl([chatLine("a")]);
  const file = await client.files.create({
    file: await toFile(new Blob([content]), "in.jsonl"),
    purpose: "batch",
  });
  assert.equal(file.object, "file");
  assert.equal(file.bytes, content.length);
  assert.equal(file.filename, "in.jsonl");
  assert.deepEqual(sim.last?.body, {
    purpose: "batch",
    file: { filename: "in.jsonl", type: "application/octet-stream", bytes: content.length },
  });
  assert.equal((await client.files.retrieve(file.id)).id, file.id);
  assert.equal(await (await client.files.content(file.id)).text(), content);
  const page = await client.files.list({ purpose: "batch" });
  assert.deepEqual(page.data.map((f) => f.id), [file.id]);
  await assert.rejects(openai(other).files.retrieve(file.id), NotFoundError);
  assert.deepEqual(await client.files.delete(file.id), { id: file.id, object: "file", deleted: true });
  await assert.rejects(client.files.retrieve(file.id), NotFoundError);
  await assert.rejects(
    client.files.create({ file: await toFile(new Blob(["x"]), "x"), purpose: "nope" as "batch" }),
    BadRequestError,
  );
});

test("batches: created from a file of this sim, completed on retrieve with an output file; cancel and list", async () => {
  await using sim = await start();
  await using other = await start("west");
  const client = openai(sim);
  const input = await client.files.create({
    file: await toFile(new Blob([jsonl([chatLine("a"), chatLine("b")])]), "in.jsonl"),
    purpose: "batch",
  });
  const batch = await client.batches.create({
    input_file_id: input.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
  assert.equal(batch.status, "validating");
  const done = await client.batches.retrieve(batch.id);
  assert.equal(done.status, "completed");
  assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
  const output = (await (await client.files.content(done.output_file_id!)).text()).trim().split("\n").map((
    l,
  ) => JSON.parse(l));
  assert.deepEqual(output.map((o) => o.custom_id), ["a", "b"]);
  assert.equal(output[0].response.body.choices[0].message.content, "[east] echo: hi a");
  const second = await client.batches.create({
    input_file_id: input.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
  assert.equal((await client.batches.cancel(second.id)).status, "cancelling");
  assert.equal((await client.batches.retrieve(second.id)).status, "cancelled");
  await assert.rejects(client.batches.cancel(batch.id), BadRequestError);
  assert.deepEqual((await client.batches.list()).data.map((b) => b.id), [second.id, batch.id]);
  // The file lives on `east` only.
  await assert.rejects(
    openai(other).batches.create({
      input_file_id: input.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    }),
    BadRequestError,
  );
});

test("audio: transcription as JSON, text and a stream; translation; speech arrives in pieces", async () => {
  await using sim = await start();
  const client = openai(sim);
  const file = await toFile(new Uint8Array(1000), "talk.wav");
  const json = await client.audio.transcriptions.create({ file, model: "whisper-1" });
  assert.equal(json.text, "[east] heard 1000 bytes of talk.wav");
  const text = await client.audio.transcriptions.create({
    file,
    model: "whisper-1",
    response_format: "text",
  });
  assert.equal(text, "[east] heard 1000 bytes of talk.wav");
  const stream = await client.audio.transcriptions.create({ file, model: "gpt-4o-transcribe", stream: true });
  const events = [];
  for await (const event of stream) events.push(event);
  assert.equal(events.at(-1)?.type, "transcript.text.done");
  assert.equal(events.filter((e) => e.type === "transcript.text.delta").length, 3);
  const translated = await client.audio.translations.create({ file, model: "whisper-1" });
  assert.equal(translated.text, "[east] translated 1000 bytes of talk.wav");
  const speech = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "hello" });
  assert.equal(speech.headers.get("content-type"), "audio/mpeg");
  let pieces = 0;
  let bytes = 0;
  for await (const chunk of speech.body!) {
    pieces++;
    bytes += chunk.length;
  }
  assert.equal(bytes, 3 * SPEECH_PIECE_BYTES);
  assert.ok(pieces >= 2, `speech came in ${pieces} pieces`);
});

test("images and moderations: generations, edits with a file, flagged input", async () => {
  await using sim = await start();
  const client = openai(sim);
  const generated = await client.images.generate({ model: "gpt-image-1", prompt: "a cat", n: 2 });
  assert.equal(generated.data?.length, 2);
  assert.ok(generated.data![0].b64_json);
  const edited = await client.images.edit({
    model: "gpt-image-1",
    image: await toFile(new Uint8Array(10), "a.png"),
    prompt: "hat",
  });
  assert.equal(edited.data?.length, 1);
  assert.equal((sim.last?.body as Record<string, unknown>).prompt, "hat");
  const moderation = await client.moderations.create({
    model: "omni-moderation-latest",
    input: ["fine", "flag-me"],
  });
  assert.deepEqual(moderation.results.map((r) => r.flagged), [false, true]);
});

test("azure layouts: deployment routes for audio and images, files and batches outside, no moderations", async () => {
  await using sim = await start();
  const client = azure(sim);
  const file = await toFile(new Uint8Array(10), "a.wav");
  const heard = await azure(sim, "whisper-dep").audio.transcriptions.create({ file, model: "ignored" });
  assert.equal(heard.text, "[east] heard 10 bytes of a.wav");
  assert.equal(sim.last?.path, "/openai/deployments/whisper-dep/audio/transcriptions");
  await azure(sim, "img-dep").images.generate({ model: "x", prompt: "a cat" });
  assert.equal(sim.last?.path, "/openai/deployments/img-dep/images/generations");
  const uploaded = await client.files.create({
    file: await toFile(new Blob([jsonl([chatLine("a")])]), "in.jsonl"),
    purpose: "batch",
  });
  assert.equal(sim.last?.path, "/openai/files");
  const batch = await client.batches.create({
    input_file_id: uploaded.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
  assert.equal((await client.batches.retrieve(batch.id)).status, "completed");
  await assert.rejects(client.moderations.create({ input: "x" }), NotFoundError);
  const v1 = new OpenAI({ baseURL: sim.url + "/openai/v1", apiKey: "test", maxRetries: 0 });
  assert.equal((await v1.files.list()).data.length, 2);
  await assert.rejects(v1.moderations.create({ input: "x" }), NotFoundError);
});

/** Opens a WebSocket with headers (Deno's extension) and collects its messages. */
function connect(url: string, headers: Record<string, string> = { authorization: "Bearer test" }) {
  const socket = new WebSocket(url, { headers });
  const messages: (string | ArrayBuffer)[] = [];
  const waiters: (() => void)[] = [];
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    messages.push(event.data);
    waiters.splice(0).forEach((wake) => wake());
  };
  const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error("websocket failed"));
  });
  const message = async (count: number) => {
    while (messages.length < count) await new Promise<void>((wake) => waiters.push(wake));
    return messages[count - 1];
  };
  return { socket, messages, opened, closed, message };
}

test("realtime: session.created, echo of events, binary back unchanged, response deltas, close from the sim", async () => {
  await using sim = await start();
  const ws = connect(sim.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime");
  await ws.opened;
  assert.equal(JSON.parse(await ws.message(1) as string).type, "session.created");
  assert.equal(sim.realtime.open, 1);
  ws.socket.send(JSON.stringify({ type: "session.update", session: { instructions: "be brief" } }));
  assert.deepEqual(JSON.parse(await ws.message(2) as string).event, {
    type: "session.update",
    session: { instructions: "be brief" },
  });
  ws.socket.send(new Uint8Array([1, 2, 3]));
  assert.deepEqual(new Uint8Array(await ws.message(3) as ArrayBuffer), new Uint8Array([1, 2, 3]));
  ws.socket.send(JSON.stringify({ type: "response.create" }));
  const done = JSON.parse(await ws.message(4 + 1 + 3) as string);
  assert.equal(done.type, "response.done");
  assert.equal(done.response.output_text, "[east] realtime gpt-realtime");
  ws.socket.send(JSON.stringify({ type: "sim.close", code: 4001, reason: "bye" }));
  const closed = await ws.closed;
  assert.equal(closed.code, 4001);
  assert.equal(closed.reason, "bye");
});

test("realtime: azure layouts take the deployment or model; no key or a status behaviour fails the handshake", async () => {
  await using sim = await start();
  for (
    const path of [
      "/openai/realtime?api-version=2025-04-01-preview&deployment=dep",
      "/openai/v1/realtime?model=dep",
    ]
  ) {
    const ws = connect(sim.url.replace("http", "ws") + path, { "api-key": "k" });
    await ws.opened;
    assert.equal(JSON.parse(await ws.message(1) as string).session.model, "dep");
    ws.socket.close();
    await ws.closed;
  }
  const keyless = connect(sim.url.replace("http", "ws") + "/v1/realtime?model=m", {});
  await assert.rejects(keyless.opened);
  await keyless.closed;
  sim.next({ kind: "status", status: 500 });
  const failing = connect(sim.url.replace("http", "ws") + "/v1/realtime?model=m");
  await assert.rejects(failing.opened);
  await failing.closed;
  assert.equal(sim.realtime.opened, 2);
});
