/**
 * Requests a careless or hostile client may send that are valid HTTP but odd for this API: HEAD on routes whose
 * GET answer streams from an upstream, and paths named after what every JavaScript object has (`constructor`,
 * `__proto__`, `toString`). Each is answered and leaves nothing behind: no attempt counted in flight forever, no
 * upstream connection held, no metric series of its own.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { generatedUpload } from "../_support/upload.ts";

async function inFlight(url: string): Promise<number> {
  const stats = await (await fetch(`${url}/stats`)).json();
  return stats.endpoints[0].in_flight;
}

test("HEAD on a file's content: headers only, the upstream answer is dropped, nothing stays in flight", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })]));
  // 2 MiB: far more than the sockets between the sim and the proxy buffer.
  const upload = generatedUpload(2 * 1024 * 1024);
  const created = await fetch(`${proxy.url}/v1/files`, {
    method: "POST",
    headers: { "content-type": upload.type, "content-length": String(upload.length) },
    body: upload.body,
  });
  assert.equal(created.status, 200);
  const { id } = await created.json();

  for (let i = 0; i < 5; i++) {
    const head = await fetch(`${proxy.url}/v1/files/${id}/content`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("x-llmproxy-endpoint"), "a");
    assert.equal(await head.text(), "");
  }
  // Each HEAD's upstream answer is cancelled: its attempt ends and its connection is let go.
  const deadline = Date.now() + 3000;
  while (await inFlight(proxy.url) > 0 && Date.now() < deadline) await delay(20);
  assert.equal(await inFlight(proxy.url), 0, "no attempt left in flight by a HEAD");

  const content = await fetch(`${proxy.url}/v1/files/${id}/content`);
  assert.equal((await content.arrayBuffer()).byteLength, 2 * 1024 * 1024);
  assert.equal(await inFlight(proxy.url), 0);
});

test("paths named after what every object has get 404s and no metric series of their own", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })]));
  for (const path of ["/constructor", "/v1/__proto__/x", "/toString", "/v1/hasOwnProperty/x", "/valueOf"]) {
    const response = await fetch(`${proxy.url}${path}`);
    assert.equal(response.status, 404, path);
    assert.equal((await response.json()).error.code, "not_found", path);
  }
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((match) => match[1]));
  assert.deepEqual([...routes], ["other"]);
});

test("a compressed request body (Content-Encoding) gets 415 naming the coding, not a JSON error", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })]));
  const json = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] });
  for (const coding of ["gzip", "deflate"] as const) {
    const body = await new Response(
      new Blob([json]).stream().pipeThrough(new CompressionStream(coding)),
    ).arrayBuffer();
    for (const path of ["/v1/chat/completions", "/v1/embeddings", "/v1/responses"]) {
      const response = await fetch(`${proxy.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": coding },
        body,
      });
      const { error } = await response.json();
      assert.equal(response.status, 415, `${coding} ${path}: ${error.message}`);
      assert.equal(error.code, "unsupported_content_encoding");
      assert.match(error.message, new RegExp(`'${coding}'`));
      assert.equal(response.headers.get("accept-encoding"), "identity");
    }
  }
  // The same body uncompressed, and a body declared `identity`, are served.
  for (const headers of [{}, { "content-encoding": "identity" }] as Record<string, string>[]) {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, { method: "POST", headers, body: json });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  assert.equal(sim.count(), 2, "no compressed body went upstream");
});

test("a compressed form or file upload gets the same 415 up front: its coded bytes never go upstream", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })]));
  const form = new FormData();
  form.append("model", "gpt-test");
  form.append("purpose", "user_data");
  form.append("file", new Blob(["RIFF audio"]), "a.wav");
  const plain = new Response(form);
  const type = plain.headers.get("content-type")!;
  const bytes = await plain.arrayBuffer();
  for (const coding of ["gzip", "deflate"] as const) {
    const body = await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream(coding)))
      .arrayBuffer();
    for (const path of ["/v1/files", "/v1/audio/transcriptions", "/v1/images/edits"]) {
      const response = await fetch(`${proxy.url}${path}`, {
        method: "POST",
        headers: { "content-type": type, "content-encoding": coding },
        body,
      });
      const { error } = await response.json();
      assert.equal(response.status, 415, `${coding} ${path}: ${error.message}`);
      assert.equal(error.code, "unsupported_content_encoding");
      assert.equal(response.headers.get("accept-encoding"), "identity");
    }
  }
  assert.equal(sim.count(), 0, "no compressed body went upstream");
  const served = await fetch(`${proxy.url}/v1/files`, {
    method: "POST",
    headers: { "content-type": type, "content-encoding": "identity" },
    body: bytes,
  });
  assert.equal(served.status, 200);
  await served.body?.cancel();
});

/** Sends `head`, then `body`; returns the answer's status line and body (" " when none came). */
async function rawAnswer(base: string, head: string, body: string): Promise<string> {
  const url = new URL(base);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  try {
    const write = async (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) {
        at += await conn.write(bytes.subarray(at)).catch(() => bytes.length);
      }
    };
    // Read while writing: the proxy answers and closes before taking all of a long bad body, and the reset the
    // rest then brings would drop an answer not read yet. The body after a pause: the proxy is reading it when
    // the bad bytes come (else Deno may refuse the request before handing it over, with a bare 400 or none).
    let text = "";
    const decoder = new TextDecoder();
    const reading = (async () => {
      const buffer = new Uint8Array(65536);
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        text += decoder.decode(buffer.subarray(0, n));
      }
    })().catch(() => {});
    await write(new TextEncoder().encode(head));
    await delay(50);
    await write(new TextEncoder().encode(body));
    await reading;
    return `${text.split("\r\n")[0]} ${text.slice(text.indexOf("\r\n\r\n") + 4)}`;
  } finally {
    try {
      conn.close();
    } catch {
      // closed by reading to the end
    }
  }
}

test("a malformed chunked body gets 400 in the envelope, not 499 (the client is still there)", async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })]));
  const bodies = {
    "a chunk size of 70,000 zeros": `${"0".repeat(70_000)}1\r\n{\r\n0\r\n\r\n`,
    "a chunk extension of 300 KB": `1;${"x".repeat(300_000)}\r\n{\r\n0\r\n\r\n`,
  };
  const routes = [
    ["/v1/chat/completions", "application/json"],
    ["/v1/audio/transcriptions", "multipart/form-data; boundary=b"], // read until its `model` field
    ["/v1/files", "multipart/form-data; boundary=b"], // streamed upstream from its first byte
  ];
  for (const [path, type] of routes) {
    for (const [name, body] of Object.entries(bodies)) {
      const head =
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n` +
        "Connection: close\r\n\r\n";
      const answer = await rawAnswer(proxy.url, head, body);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${path}, ${name}: ${answer.slice(0, 200)}`);
      assert.match(
        answer,
        /chunked transfer coding could not be read.*"code":"invalid_request"/,
        `${path}, ${name}`,
      );
    }
  }
  assert.equal(sim.count(), 0);
});
