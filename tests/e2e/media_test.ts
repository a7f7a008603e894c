import assert from "node:assert/strict";
import OpenAI, { BadRequestError, NotFoundError, toFile } from "openai";
import { SPEECH_PIECE_BYTES } from "../../src/sim/audio.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const azure = "          provider: azure\n          api_version: 2025-04-01-preview";

/** An OpenAI-style and an Azure-style sim in group `media`, and a group `azure-only`. */
async function setup(options: { chunks?: number; chunkDelayMs?: number } = {}) {
  const openai = await SimUpstream.start({ name: "openai", quiet: true, ...options });
  const az = await SimUpstream.start({ name: "azure", quiet: true, ...options });
  const lone = await SimUpstream.start({ name: "lone", quiet: true });
  const yaml = groupYaml(
    [
      endpointYaml(openai.url, { name: "openai", model: "model-o" }),
      endpointYaml(az.url, { name: "azure", model: "dep-a", extra: azure }),
    ],
    [],
    "media",
  ).replace(
    "general_settings:",
    `  - model_group: azure-only\n    models:\n${
      endpointYaml(lone.url, { name: "lone", model: "dep-l", extra: azure })
    }\ngeneral_settings:`,
  );
  const proxy = await startProxy(yaml);
  return {
    openai,
    az,
    lone,
    proxy,
    client: new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "k", maxRetries: 0 }),
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await Promise.all([openai.close(), az.close(), lone.close()]);
    },
  };
}

test("audio: transcriptions and translations stream their form to both layouts with each endpoint's model", async () => {
  await using ctx = await setup({ chunks: 3 });
  const audio = await toFile(new Uint8Array(5000), "talk.wav");
  const heard = new Set<string>();
  for (let i = 0; i < 2; i++) {
    // The SDK's usual order: the file before the model.
    const result = await ctx.client.audio.transcriptions.create({ file: audio, model: "media" });
    heard.add(result.text);
  }
  assert.deepEqual([...heard].sort(), [
    "[azure] heard 5000 bytes of talk.wav",
    "[openai] heard 5000 bytes of talk.wav",
  ]);
  const toOpenai = ctx.openai.requests.find((r) => r.path === "/v1/audio/transcriptions")!;
  assert.equal((toOpenai.body as Record<string, unknown>).model, "model-o");
  const toAzure = ctx.az.requests.find((r) => r.path.includes("transcriptions"))!;
  assert.equal(toAzure.path, "/openai/deployments/dep-a/audio/transcriptions");
  assert.equal((toAzure.body as Record<string, unknown>).model, "dep-a");
  // A streamed transcription: the SDK sees its events.
  const stream = await ctx.client.audio.transcriptions.create({ file: audio, model: "media", stream: true });
  const types = [];
  for await (const event of stream) types.push(event.type);
  assert.deepEqual(types, [
    "transcript.text.delta",
    "transcript.text.delta",
    "transcript.text.delta",
    "transcript.text.done",
  ]);
  const text = await ctx.client.audio.translations.create({
    file: audio,
    model: "media",
    response_format: "text",
  });
  assert.match(String(text), /translated 5000 bytes of talk.wav/);
  // The group can come from the header instead of the model.
  const viaHeader = await ctx.client.audio.transcriptions.create({ file: audio, model: "whatever" }, {
    headers: { "x-llmproxy-model-group": "azure-only" },
  });
  assert.equal(viaHeader.text, "[lone] heard 5000 bytes of talk.wav");
  const unknown = await ctx.client.audio.transcriptions.create({ file: audio, model: "nope" }).catch((e) =>
    e
  );
  assert.ok(unknown instanceof NotFoundError);
  assert.match(unknown.message, /'media', 'azure-only'/);
});

test("audio: a transcription fails over on a 500; speech streams its binary audio as it arrives", async () => {
  await using ctx = await setup({ chunks: 4, chunkDelayMs: 150 });
  ctx.openai.always({ kind: "status", status: 500 });
  for (let i = 0; i < 2; i++) {
    const result = await ctx.client.audio.transcriptions.create({
      file: await toFile(new Uint8Array(10), "a.wav"),
      model: "media",
    });
    assert.equal(result.text, "[azure] heard 10 bytes of a.wav");
  }
  assert.ok(ctx.openai.count("transcriptions") >= 1, "the failing endpoint was tried");
  ctx.openai.reset();
  const started = performance.now();
  const speech = await ctx.client.audio.speech.create({
    model: "media",
    voice: "alloy",
    input: "hello there",
  });
  assert.equal(speech.headers.get("content-type"), "audio/mpeg");
  const reader = speech.body!.getReader();
  const first = await reader.read();
  const firstAt = performance.now() - started;
  let bytes = first.value!.length;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
  }
  const doneAt = performance.now() - started;
  assert.equal(bytes, 4 * SPEECH_PIECE_BYTES);
  // Three pauses of 150 ms come after the first piece: a proxy that buffered would show it only at the end.
  assert.ok(doneAt - firstAt >= 300, `first piece at ${firstAt} ms, the last at ${doneAt} ms`);
});

test("images and moderations: balanced over both layouts; moderations skip Azure, an Azure-only group is a 400", async () => {
  await using ctx = await setup();
  const served = new Set<string | null>();
  for (let i = 0; i < 2; i++) {
    const { data, response } = await ctx.client.images.generate({ model: "media", prompt: "a cat" })
      .withResponse();
    assert.equal(data.data?.length, 1);
    served.add(response.headers.get("x-llmproxy-endpoint"));
  }
  assert.deepEqual([...served].sort(), ["azure", "openai"]);
  assert.ok(ctx.az.requests.some((r) => r.path === "/openai/deployments/dep-a/images/generations"));
  const edited = await ctx.client.images.edit({
    model: "media",
    prompt: "add a hat",
    image: await toFile(new Uint8Array(64), "cat.png"),
  });
  assert.equal(edited.data?.length, 1);
  for (let i = 0; i < 3; i++) {
    const { data, response } = await ctx.client.moderations.create({
      model: "media",
      input: ["ok", "flag-me"],
    }).withResponse();
    assert.deepEqual(data.results.map((r) => r.flagged), [false, true]);
    assert.equal(response.headers.get("x-llmproxy-endpoint"), "openai");
  }
  assert.equal(ctx.az.count("moderations"), 0);
  const azureOnly = await ctx.client.moderations.create({ model: "azure-only", input: "x" }).catch((e) => e);
  assert.ok(azureOnly instanceof BadRequestError);
  assert.equal(azureOnly.code, "unsupported_route");
  assert.match(azureOnly.message, /Azure OpenAI has no moderations route/);
});

test("unknown /v1 routes: a 404 in the OpenAI envelope that names the routes served", async () => {
  await using ctx = await setup();
  const response = await fetch(ctx.proxy.url + "/v1/fine_tuning/jobs", {
    headers: { authorization: "Bearer k" },
  });
  assert.equal(response.status, 404);
  const { error } = await response.json();
  assert.equal(error.type, "invalid_request_error");
  assert.equal(error.code, "not_found");
  for (
    const route of [
      "POST /v1/chat/completions",
      "POST /v1/files",
      "GET /v1/files/{id}/content",
      "POST /v1/audio/speech",
      "GET /v1/realtime",
      "POST /v1/moderations",
    ]
  ) {
    assert.ok(error.message.includes(route), `${route} in: ${error.message}`);
  }
  const error2 = await ctx.client.vectorStores.list().catch((e) => e);
  assert.ok(error2 instanceof NotFoundError);
});

test("a key limited to some model groups reaches only those through these routes too", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  const yaml = groupYaml([endpointYaml(sim.url, { name: "s" })], [], "voice").replace(
    "general_settings:",
    `  - model_group: other\n    models:\n${endpointYaml(sim.url, { name: "o" })}\n` +
      "keys:\n  - {name: team-v, key: sk-team-v, models: [voice]}\ngeneral_settings:",
  );
  await using proxy = await startProxy(yaml);
  const client = new OpenAI({ baseURL: proxy.url + "/v1", apiKey: "sk-team-v", maxRetries: 0 });
  const audio = await toFile(new Uint8Array(4), "a.wav");
  assert.equal(
    (await client.audio.transcriptions.create({ file: audio, model: "voice" })).text,
    "[s] heard 4 bytes of a.wav",
  );
  const refused = await client.audio.transcriptions.create({ file: audio, model: "other" }).catch((e) => e);
  assert.ok(refused instanceof NotFoundError);
  assert.doesNotMatch(refused.message, /'other'.*configured model groups: .*'other'/);
  // With one usable group, an upload needs no header.
  const file = await client.files.create({
    file: await toFile(new Blob(["x"]), "x.txt"),
    purpose: "user_data",
  });
  assert.equal(file.bytes, 1);
});

test("a form with a second `model` field, or a file part named `model`, is refused: the upstream never reads a model the key may not use", async () => {
  for (const client of ["http1", "fetch"]) await secondModel(client);
});

/** A form naming `model` twice, through the `client` upstream client. */
async function secondModel(client: string) {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  const yaml = groupYaml([endpointYaml(sim.url, { name: "s" })], [`upstream_client: ${client}`], "voice") +
    "keys:\n  - {name: team-v, key: sk-team-v, models: [voice]}\n";
  await using proxy = await startProxy(yaml);
  const boundary = "dup-model-boundary";
  const field = (name: string, value: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  /**
   * model=voice, a file of `size` bytes, then model=gpt-4o-transcribe (a model no group of the key names), as a
   * text field or as a file part named `model`.
   */
  const form = (size: number, asFile = false) => {
    const encoder = new TextEncoder();
    const pieces = [
      encoder.encode(
        field("model", "voice") +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`,
      ),
      ...Array.from({ length: Math.ceil(size / 65536) }, () => new Uint8Array(65536).fill(120)),
      encoder.encode(
        `\r\n${
          asFile
            ? `--${boundary}\r\nContent-Disposition: form-data; name="model"; filename="m.txt"\r\n\r\n` +
              "gpt-4o-transcribe\r\n"
            : field("model", "gpt-4o-transcribe")
        }--${boundary}--\r\n`,
      ),
    ];
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = pieces.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
  };
  const send = async (body: ReadableStream<Uint8Array> | Blob, headers: Record<string, string> = {}) => {
    const answer = await fetch(`${proxy.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: {
        authorization: "Bearer sk-team-v",
        "content-type": `multipart/form-data; boundary=${boundary}`,
        ...headers,
      },
      body,
    });
    return { status: answer.status, error: (await answer.json()).error };
  };
  // Streamed (no length: the form is read only up to its first `model`), held whole, or named by the header; the
  // second `model` a text field or a file part.
  for (const asFile of [false, true]) {
    const small = await new Response(form(4, asFile)).blob();
    for (
      const [what, got] of [
        ["streamed", await send(form(6 * 1024 * 1024, asFile))],
        ["held whole", await send(small)],
        ["header", await send(small, { "x-llmproxy-model-group": "voice" })],
      ] as const
    ) {
      assert.equal(got.status, 400, `${client}, ${what}, file part: ${asFile}`);
      assert.equal(got.error.param, "model", what);
      assert.match(
        got.error.message,
        asFile ? /'model' is a file part/ : /more than one 'model' field/,
        what,
      );
    }
  }
  const models = sim.requests.map((r) => (r.body as Record<string, unknown> | undefined)?.model);
  assert.ok(!models.includes("gpt-4o-transcribe"), `the upstream read: ${models.join(", ")}`);
}

test("forms held up to their `model` field (file first) are bounded together: past the bound, a 503 to retry", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  const MiB = 1024 * 1024;
  // Chunked bodies are reserved at max_body_bytes by the request-body bound; forms are held beyond it.
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "s" })], [
      `max_body_bytes: ${MiB}`,
      `max_inflight_body_bytes: ${8 * MiB}`,
    ]),
  );
  const boundary = "held-forms-boundary";
  /** A form sending a 6 MiB file first, then `model` once `gate` resolves; no declared length (chunked). */
  const form = (gate: Promise<void>) => {
    const encoder = new TextEncoder();
    let pieces = 6 * 16;
    let started = false;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!started) {
          started = true;
          const head =
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`;
          return controller.enqueue(encoder.encode(head));
        }
        if (pieces-- > 0) return controller.enqueue(new Uint8Array(64 * 1024).fill(120));
        await gate;
        const tail = `\r\n--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-test\r\n` +
          `--${boundary}--\r\n`;
        controller.enqueue(encoder.encode(tail));
        controller.close();
      },
    });
  };
  const send = (body: ReadableStream<Uint8Array>) =>
    fetch(`${proxy.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      body,
    });
  let open!: () => void;
  const first = send(form(new Promise((resolve) => open = resolve)));
  const hold = proxy.services.bodyPool;
  try {
    for (let i = 0; i < 400 && hold.held < 6 * MiB; i++) await delay(25);
    assert.ok(hold.held >= 6 * MiB, `the first form's file is held: ${hold.held} bytes`);
    const second = await send(form(Promise.resolve()));
    assert.equal(second.status, 503);
    assert.equal(second.headers.get("retry-after"), "1");
    const { error } = await second.json();
    assert.equal(error.code, "server_busy");
    assert.match(error.message, /send 'model' before the file/);
  } finally {
    open();
  }
  const answered = await first;
  assert.equal(answered.status, 200);
  assert.match((await answered.json()).text, /heard \d+ bytes of a\.wav/);
  assert.equal(hold.held, 0, "given back");
  const third = await send(form(Promise.resolve()));
  assert.equal(third.status, 200);
  await third.body?.cancel();
  assert.equal(hold.held, 0);
});
