/**
 * `responses.retrieve(id, { stream: true })`: the SDK's way to follow a background response, whose events come
 * for as long as the response runs (minutes for a deep-research task). They pass on as they come; the proxy used
 * to read the answer whole first, so the client saw nothing until the response ended (and nothing at all when
 * that took longer than the upstream timeout).
 */

import assert from "node:assert/strict";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const event = (type: string, n: number) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n })}\n\n`;

test("GET /v1/responses/{id}?stream=true passes each event on as the upstream sends it", async () => {
  let finish = () => {};
  const finished = new Promise<void>((resolve) => finish = resolve);
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      if (request.method === "POST") {
        await request.body?.cancel();
        return Response.json({ id: "resp_bg1", object: "response", status: "queued", background: true });
      }
      const url = new URL(request.url);
      assert.equal(url.pathname, "/v1/responses/resp_bg1");
      assert.equal(url.searchParams.get("stream"), "true");
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode(event("response.in_progress", 1)));
          await finished; // the rest only once the test has seen the first event
          controller.enqueue(encoder.encode(event("response.completed", 2)));
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  );
  await using proxy = await startProxy(
    groupYaml([endpointYaml(`http://127.0.0.1:${upstream.addr.port}`, { name: "a" })]),
  );
  const created = await fetch(`${proxy.url}/v1/responses`, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-test", input: "research this", background: true }),
  });
  assert.equal((await created.json()).id, "resp_bg1");

  // The answer's head and its first event, while the upstream holds the rest back.
  const opening = (async () => {
    const answer = await fetch(`${proxy.url}/v1/responses/resp_bg1?stream=true`);
    const reader = answer.body!.getReader();
    return { answer, reader, first: await reader.read() };
  })();
  const early = await Promise.race([opening, delay(3000).then(() => undefined)]);
  finish();
  const { answer, reader, first } = await opening;
  assert.ok(early, "nothing came before the response ended");
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get("content-type") ?? "", /text\/event-stream/);
  assert.match(new TextDecoder().decode(first.value), /in_progress/);
  let rest = "";
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    rest += new TextDecoder().decode(read.value);
  }
  assert.match(rest, /response\.completed/);
});
