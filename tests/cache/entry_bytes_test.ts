/**
 * The memory store's byte count of a JSON entry (/stats `cache.bytes`), which the writer hands it (the answer's bytes) instead of having
 * the store scan the stored text: it must be the text's UTF-8 size, for multi-byte text and for an answer that
 * began with a byte-order mark (the decoder drops it from the text that is stored).
 */

import assert from "node:assert/strict";
import { entryKey } from "../../src/cache/entry.ts";
import { cacheKey } from "../../src/cache/key.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const answer = (note: string) =>
  JSON.stringify({
    id: "chatcmpl-bytes",
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: note }, finish_reason: "stop" }],
  });

test("a stored JSON answer counts its UTF-8 bytes: multi-byte text, a leading byte-order mark", async () => {
  const bodies: Record<string, Uint8Array<ArrayBuffer>> = {
    "multi-byte": encoder.encode(answer("héllo ✓ 😀 — ünïcödé")),
    "with a BOM": new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode(answer("bom ✓ 😀"))]),
  };
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const { messages } = await request.json();
      return new Response(bodies[messages[0].content], { headers: { "content-type": "application/json" } });
    },
  );
  await using proxy = await startProxy(
    groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`)], ["cache: true"]),
  );
  let expected = 0;
  for (const content of Object.keys(bodies)) {
    const body = { model: "gpt-test", messages: [{ role: "user", content }] };
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    assert.equal(response.headers.get("x-llmproxy-cache"), "MISS");
    await response.arrayBuffer();
    await proxy.services.cache.settled();
    const key = entryKey(cacheKey({ route: "chat", group: "gpt-test", stream: false, body }));
    const stored = await proxy.services.store.get(key);
    assert.ok(
      stored !== null &&
        stored.endsWith(answer(content === "with a BOM" ? "bom ✓ 😀" : "héllo ✓ 😀 — ünïcödé")),
    );
    expected += encoder.encode(key).length + encoder.encode(stored).length;
    const usage = await proxy.services.store.usage!("cache:");
    assert.deepEqual([usage.entries, usage.bytes], [content === "multi-byte" ? 1 : 2, expected], content);
  }
});
