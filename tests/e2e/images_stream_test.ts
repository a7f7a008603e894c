/**
 * `images.generate` with `stream: true` (gpt-image models stream partial images as server-sent events): the
 * events pass through as they come. The proxy used to read every image answer as JSON, so a streamed one was a
 * "malformed answer": the endpoint was cooled down for everyone and the client got a 503.
 */

import assert from "node:assert/strict";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const PARTIAL = { type: "image_generation.partial_image", b64_json: "AAAA", partial_image_index: 0 };
const COMPLETED = {
  type: "image_generation.completed",
  b64_json: "BBBB",
  usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12 },
};

test("images.generate with stream: true streams its events and leaves the endpoint healthy", async () => {
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const body = await request.json();
      if (!body.stream) {
        return Response.json({ created: 1, data: [{ b64_json: "CCCC" }], usage: COMPLETED.usage });
      }
      const events = [PARTIAL, COMPLETED].map((event) =>
        `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
      );
      return new Response(events.join(""), { headers: { "content-type": "text/event-stream" } });
    },
  );
  await using proxy = await startProxy(
    groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "a" })]),
  );
  const streamed = await fetch(`${proxy.url}/v1/images/generations`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", prompt: "a cat", stream: true, partial_images: 1 }),
  });
  const text = await streamed.text();
  assert.equal(streamed.status, 200, text);
  assert.match(streamed.headers.get("content-type") ?? "", /text\/event-stream/);
  assert.match(text, /image_generation\.partial_image/);
  assert.match(text, /image_generation\.completed/);

  const whole = await fetch(`${proxy.url}/v1/images/generations`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", prompt: "a cat" }),
  });
  assert.equal(whole.status, 200);
  assert.equal((await whole.json()).data[0].b64_json, "CCCC");
  const [endpoint] = (await (await fetch(`${proxy.url}/stats`)).json()).endpoints;
  assert.equal(endpoint.state, "available");
  assert.equal(endpoint.failures, 0);
});
