/**
 * When a kept-alive upstream connection fails before any byte of an answer, the http1 client sends the request once
 * more on a new connection (a server closing an idle connection did not read it). The worst moment is another
 * matter: the upstream took the request, acted on it, and the connection closed before its answer. A chat
 * completion is sent again then (the proxy would otherwise send it to another endpoint all the same), but creating a
 * batch never is: it goes on a new connection, which a server's idle close cannot have spoilt, and its failure is
 * the client's 502 (one batch made), not a second batch. Before, the batch was made twice and the client got the
 * second.
 */

import assert from "node:assert/strict";
import OpenAI, { APIError, toFile } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { droppingRelay } from "../_support/dropping_relay.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const posts = (sim: SimUpstream, path: string) =>
  sim.requests.filter((request) => request.method === "POST" && request.path.endsWith(path)).length;

test("an answer lost with its kept-alive connection: a chat is sent again, a batch is never made twice", async () => {
  await using sim = await SimUpstream.start({ name: "s", quiet: true });
  await using relay = droppingRelay(sim.url);
  await using proxy = await startProxy(groupYaml([endpointYaml(relay.url, { name: "s" })]), {
    logLevel: "error",
  });
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "sk-client", maxRetries: 0 });
  const line = { custom_id: "r1", method: "POST", url: "/v1/chat/completions", body: { model: "gpt-test" } };
  const file = await client.files.create({
    file: await toFile(new Blob([JSON.stringify(line) + "\n"]), "in.jsonl"),
    purpose: "batch",
  });

  // A chat completion whose answer is lost on a kept-alive connection: sent again on a new one, answered.
  await client.chat.completions.create({ model: "gpt-test", messages: [{ role: "user", content: "warm" }] });
  assert.equal(proxy.services.upstream.idleConnections, 1, "a kept-alive connection is parked");
  relay.dropNext();
  const chat = await client.chat.completions.create({
    model: "gpt-test",
    messages: [{ role: "user", content: "lost once" }],
  });
  assert.equal(chat.object, "chat.completion");
  assert.equal(posts(sim, "/chat/completions"), 3, "the lost chat reached the upstream twice");

  // Creating a batch with a kept-alive connection parked: its answer is lost; it is not sent again.
  assert.equal(proxy.services.upstream.idleConnections, 1, "a kept-alive connection is parked");
  const accepted = relay.accepted;
  relay.dropNext();
  const failed = await client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  }).then(() => undefined, (error) => error);
  assert.equal(posts(sim, "/batches"), 1, "the batch reached the upstream once");
  assert.ok(failed instanceof APIError, `the lost batch is an error, got ${failed}`);
  assert.equal(failed.status, 502, failed.message);
  assert.match(failed.message, /may have made the batch.*list the batches before sending it again/);
  assert.equal(relay.accepted, accepted + 1, "on a new connection");
  assert.equal(proxy.services.upstream.idleConnections, 1, "the kept-alive connection was left parked");

  // The next one is made, once.
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
  assert.match(batch.id, /^batch_/);
  assert.equal(posts(sim, "/batches"), 2);
});
