/**
 * A HEAD's answer names the length its GET would send (RFC 9110: the same header fields as the GET), not the
 * `content-length: 0` Deno's engine writes for an empty body: on the proxy's own answers (`/health`,
 * `/v1/models`, `/stats`, the dashboard page) and on a file's content streamed from the upstream. Raw sockets,
 * so that what is on the wire is what is checked.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";
import { generatedUpload } from "../_support/upload.ts";

/** The head of the answer to `method path` on a new connection (`Connection: close`), and the bytes after it. */
async function exchange(port: number, method: string, path: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode(`${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`),
  );
  const bytes = new Uint8Array(await new Response(conn.readable).arrayBuffer());
  const text = new TextDecoder("latin1").decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  const head = text.slice(0, end).toLowerCase();
  return {
    status: Number(head.split(" ")[1]),
    length: head.match(/\r\ncontent-length: (\d+)/)?.[1],
    chunked: /\r\ntransfer-encoding: chunked/.test(head),
    after: bytes.length - end - 4,
  };
}

test("HEAD answers carry the length of their GET answer, and no body", { timeout: 30_000 }, async () => {
  await using sim = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })]));
  const port = Number(new URL(proxy.url).port);

  const upload = generatedUpload(300 * 1024);
  const created = await fetch(`${proxy.url}/v1/files`, {
    method: "POST",
    headers: { "content-type": upload.type, "content-length": String(upload.length) },
    body: upload.body,
  });
  assert.equal(created.status, 200);
  const { id } = await created.json();

  for (const path of ["/health", "/v1/models", "/ui", `/v1/files/${id}/content`]) {
    const get = await exchange(port, "GET", path);
    const head = await exchange(port, "HEAD", path);
    assert.equal(head.status, get.status, path);
    assert.equal(head.after, 0, `${path}: a HEAD's answer has no body`);
    // A GET sent chunked (a file's content the upstream streamed) has no length: the HEAD gives the body's.
    const body = (await (await fetch(`${proxy.url}${path}`)).arrayBuffer()).byteLength;
    assert.equal(get.length ?? String(body), String(body), path);
    assert.equal(
      head.length,
      String(body),
      `${path}: GET sent ${body} bytes${get.chunked ? ", chunked" : ""}`,
    );
    assert.notEqual(head.length, "0", path);
  }
});
