/**
 * A client that leaves half-way through a streamed upload (a file, an audio form) is the client's doing: the
 * endpoint the body was streaming to is not counted as failed nor cooled down, nothing is logged as an error, and
 * the next request is served. (One such client used to cool its endpoint down for `cooldown_time`: with one
 * endpoint, the whole group answered 503 to everyone.)
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const BOUNDARY = "leaving-client";

/** Declares a 50 MB multipart upload to `path`, sends 5 MB of it, and goes away. */
async function leaveMidUpload(base: string, path: string): Promise<void> {
  const url = new URL(base);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const form = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-test\r\n` +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n` +
    "Content-Type: application/octet-stream\r\n\r\n";
  const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n` +
    `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\n\r\n${form}`;
  /** False when the proxy took nothing for a second (it is not reading the body) or closed. */
  const write = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 1000));
      const wrote = await Promise.race([conn.write(bytes.subarray(at)).catch(() => null), stalled]);
      clearTimeout(timer);
      if (wrote === null) return false;
      at += wrote;
    }
    return true;
  };
  try {
    await write(new TextEncoder().encode(head));
    const chunk = new Uint8Array(64 * 1024).fill(120);
    for (let i = 0; i < 80 && await write(chunk); i++);
    // Long enough for the proxy to be streaming the body upstream.
    await delay(100);
  } finally {
    conn.close();
  }
}

for (const client of ["http1", "fetch"]) {
  for (const path of ["/v1/files", "/v1/audio/transcriptions"]) {
    test(`a client leaving mid-upload (${path}, ${client} client) does not fail its endpoint`, async () => {
      await using sim = await SimUpstream.start({ name: "a", quiet: true });
      const yaml = groupYaml([endpointYaml(sim.url, { name: "a" })], [`upstream_client: ${client}`]);
      await using proxy = await startProxy(yaml, { logLevel: "warn" });
      for (let i = 0; i < 3; i++) await leaveMidUpload(proxy.url, path);
      await delay(200);

      const [endpoint] = (await (await fetch(`${proxy.url}/stats`)).json()).endpoints;
      assert.equal(endpoint.state, "available", JSON.stringify(endpoint));
      assert.equal(endpoint.failures, 0, JSON.stringify(endpoint));
      assert.deepEqual(proxy.logs.filter((line) => JSON.parse(line).level === "error"), []);
      const chat = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "still there?" }] }),
      });
      assert.equal(chat.status, 200);
      await chat.body?.cancel();
    });
  }
}
