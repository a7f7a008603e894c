/**
 * A Sentinel failover over TLS while answers stream and conversations go on: a master, a replica and three
 * sentinels, all with TLS; two instances, two endpoints. The master is SIGKILLed while a chat stream (through A)
 * and a streamed Responses continuation (through B) are under way: both end complete. While Sentinel promotes the
 * replica and after, a continuation of a conversation made before the failover reaches the endpoint that holds
 * it, or is told to try again (503 `store_unavailable`), never the other endpoint (whose 400 would say the
 * response does not exist).
 */

import assert from "node:assert/strict";
import OpenAI, { APIError } from "openai";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { makeCerts } from "../_support/certs.ts";
import { delay, endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { hasRedis } from "../_support/redis.ts";
import { MASTER_NAME, startSentinels } from "../_support/redis_sentinel.ts";
import { available, test } from "../_support/test.ts";

test({
  name: "Sentinel with TLS: a failover during a stream and a Responses continuation loses neither",
  ignore: !hasRedis || !available("redis-sentinel") || !available("openssl"),
  timeout: 90_000,
  async fn() {
    await using certs = await makeCerts();
    await using set = await startSentinels({
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca },
    });
    // Streams of 20 chunks, 100 ms apart: about 2 s each, long enough to span the kill.
    await using east = await SimUpstream.start({ name: "east", quiet: true, chunks: 20, chunkDelayMs: 100 });
    await using west = await SimUpstream.start({ name: "west", quiet: true, chunks: 20, chunkDelayMs: 100 });
    const yaml = groupYaml(
      [endpointYaml(east.url, { name: "east" }), endpointYaml(west.url, { name: "west" })],
      [
        "redis_sentinels:",
        ...set.sentinels.map((sentinel) => `  - ${sentinel}`),
        `redis_sentinel_master: ${MASTER_NAME}`,
        "redis_ssl: true",
        `redis_tls_ca_file: ${certs.ca}`,
        `redis_tls_cert_file: ${certs.clientCert}`,
        `redis_tls_key_file: ${certs.clientKey}`,
      ],
    );
    await using a = await startProxy(yaml);
    await using b = await startProxy(yaml);
    const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });

    const opening = await client(a.url).responses.create({ model: "gpt-test", input: "remember 7" })
      .withResponse();
    const owner = opening.response.headers.get("x-llmproxy-endpoint")!;
    // On the replica too (replication is asynchronous), so the promoted replica holds where it is.
    const key = `llmproxy:aff:${opening.data.id}`;
    for (let i = 0; i < 100 && await set.replica.command("EXISTS", key) !== "1"; i++) await delay(50);
    assert.equal(await set.replica.command("EXISTS", key), "1", "the affinity record reached the replica");

    const chat = (async () => {
      const stream = await client(a.url).chat.completions.create({
        model: "gpt-test",
        messages: [{ role: "user", content: "stream through the failover" }],
        stream: true,
      });
      let chunks = 0;
      let finish: string | null = null;
      for await (const chunk of stream) {
        chunks++;
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { chunks, finish };
    })();
    const continued = (async () => {
      const { data: stream, response } = await client(b.url).responses.create({
        model: "gpt-test",
        previous_response_id: opening.data.id,
        input: "and stream on",
        stream: true,
      }).withResponse();
      let text = "";
      let completed = false;
      for await (const event of stream) {
        if (event.type === "response.output_text.delta") text += event.delta;
        if (event.type === "response.completed") completed = true;
      }
      return { endpoint: response.headers.get("x-llmproxy-endpoint"), text, completed };
    })();
    await delay(500);
    await set.master.signal("SIGKILL");

    const streamed = await chat;
    assert.equal(streamed.finish, "stop", `the chat stream ended complete: ${JSON.stringify(streamed)}`);
    assert.ok(streamed.chunks >= 20, `${streamed.chunks} chunks`);
    const turn = await continued;
    assert.equal(turn.endpoint, owner, "the continuation went to the endpoint that holds the conversation");
    assert.ok(turn.completed, "the streamed continuation ended with response.completed");
    assert.match(turn.text, /and stream on/);

    // Through the promotion and after: the owner, or "try again"; never the other endpoint.
    const deadline = Date.now() + 30_000;
    const outcomes: string[] = [];
    let promoted = false;
    let routed = 0;
    while (Date.now() < deadline && !(promoted && routed >= 3)) {
      promoted ||= (await set.masterPort()) === set.replica.tlsPort;
      const outcome = await client(b.url).responses.create({
        model: "gpt-test",
        previous_response_id: opening.data.id,
        input: "still there?",
      }).withResponse().then(
        ({ response }) => `200 ${response.headers.get("x-llmproxy-endpoint")}`,
        (error) => error instanceof APIError ? `${error.status} ${error.code}` : String(error),
      );
      outcomes.push(outcome);
      if (outcome === `200 ${owner}`) routed += promoted ? 1 : 0;
      else await delay(200);
    }
    assert.ok(promoted, "Sentinel promoted the replica");
    assert.deepEqual(
      outcomes.filter((outcome) => outcome !== `200 ${owner}` && outcome !== "503 store_unavailable"),
      [],
      `every continuation: ${outcomes.join(", ")}`,
    );
    assert.ok(routed >= 3, `continuations after the promotion: ${outcomes.join(", ")}`);
  },
});
