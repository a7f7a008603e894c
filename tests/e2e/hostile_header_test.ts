/**
 * Header values that HTTP does not allow but a lax parser lets through: a control character other than tab, or DEL,
 * in an upstream's answer (JSON and stream). Deno's HTTP/1.1 writer (2.9.6) panics on such a value and takes the
 * whole process down, so none may reach a `Response`: the proxy must go on serving (the answer is refused as one
 * with CR, LF or NUL in a header: an upstream failure, a 5xx to the client), and answer its next requests.
 */

import assert from "node:assert/strict";
import { endpointYaml, startProxyProcess } from "../_support/proxy.ts";
import { rawServer } from "../_support/raw_server.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();

test("an upstream header value with a control character or DEL: the proxy answers and stays up", {
  timeout: 60_000,
}, async () => {
  const values = ["a\x01b", "a\x7fb", "\x1b[31m", "a\x08"];
  let round = 0;
  let asked = 0;
  await using upstream = rawServer(async (conn, read) => {
    while (await read()) {
      asked++;
      const value = values[Math.floor(round / 2) % values.length];
      const extra = `x-hostile: ${value}\r\n`;
      const stream = round++ % 2 === 1;
      const body = stream
        ? 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
        : '{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}';
      await conn.write(encoder.encode(
        `HTTP/1.1 200 OK\r\ncontent-type: ${stream ? "text/event-stream" : "application/json"}\r\n${extra}` +
          `content-length: ${encoder.encode(body).length}\r\n\r\n${body}`,
      ));
    }
  });
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    // A group per request: the failure cools its endpoint down, and each hostile value must reach the proxy.
    const groups = values.flatMap((_, i) => [2 * i, 2 * i + 1]).map((n) =>
      `  - model_group: g${n}\n    models:\n${endpointYaml(upstream.url, { name: `e${n}` })}`
    );
    await Deno.writeTextFile(
      path,
      `model_groups:\n${groups.join("\n")}\ngeneral_settings:\n  num_retries: 0\n  cache: false\n`,
    );
    await using proxy = await startProxyProcess(["--config", path, "--port", "0", "--log-level", "error"]);
    const ask = (n: number, stream: boolean) =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: `g${n}`, stream, messages: [{ role: "user", content: "hi" }] }),
      });
    for (let i = 0; i < values.length * 2; i++) {
      const response = await ask(i, i % 2 === 1).catch((error) => error as Error);
      assert.ok(response instanceof Response, `request ${i}: ${response}\n${proxy.output()}`);
      await response.text();
      assert.ok(response.status >= 500, `request ${i}: ${response.status}`);
      assert.equal(response.headers.get("x-hostile"), null, `request ${i}: the value reached the client`);
    }
    assert.equal(asked, values.length * 2, "every hostile answer was sent");
    const health = await fetch(`${proxy.url}/health`);
    await health.text();
    assert.ok(health.status < 600, proxy.output());
    assert.equal(proxy.output().includes("panicked"), false, proxy.output());
  } finally {
    await Deno.remove(path);
  }
});
