/**
 * The lookup stage's promise-free path (issue 22.2b): on the in-process store, with no identical request in flight,
 * a lookup decides at once, and an entry is written at once and counted. Nothing else observes either, so a change
 * that loses them would otherwise pass every test.
 */

import assert from "node:assert/strict";
import type { Admitted, GenerationRequest } from "../../src/core/request.ts";
import { cachedProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const body = (content: string) => ({ model: "gpt-test", messages: [{ role: "user", content }] });

test("memory store: a hit, a miss that leads a flight and a no-store miss are decided at once; a follower waits", async () => {
  await using s = await cachedProxy();
  const { proxy } = s;
  const stored = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify(body("stored")),
  });
  assert.equal(await stored.text() !== "" && stored.headers.get("x-llmproxy-cache"), "MISS");
  const streamed = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ ...body("stored"), stream: true }),
  });
  assert.match(await streamed.text(), /data: \[DONE\]\n\n$/);
  await proxy.services.cache.settled();
  // Written at once on this store (Store.setNow), and counted as /stats shows them.
  const stats = await (await fetch(`${proxy.url}/stats`)).json();
  assert.deepEqual([stats.cache.writes, stats.cache.write_failures, stats.cache.entries], [2, 0, 2]);
  const request = (content: string, headers: Record<string, string> = {}): Admitted<GenerationRequest> => ({
    kind: "generation",
    route: "chat",
    group: proxy.services.config.groups[0],
    stream: false,
    body: body(content),
    clientHeaders: new Headers(headers),
    requestId: `lookup-${content}`,
    signal: new AbortController().signal,
    identity: null,
  });
  const { cache } = proxy.services;

  const hit = cache.lookup(request("stored"));
  assert.ok(!(hit instanceof Promise), "a hit");
  assert.equal(hit.kind === "answer" && hit.answer.meta.cache, "HIT");

  const lead = cache.lookup(request("new"));
  assert.ok(!(lead instanceof Promise), "a miss that leads");
  assert.equal(lead.kind, "miss");
  const follower = cache.lookup(request("new"));
  assert.ok(follower instanceof Promise, "an identical request in flight is followed");
  if (lead.kind === "miss") lead.ticket.drop();
  const after = await follower; // its leader gave up: it leads the next flight
  assert.equal(after.kind, "miss");
  if (after.kind === "miss") after.ticket.drop();

  const unstored = cache.lookup(request("new", { "cache-control": "no-store" }));
  assert.ok(!(unstored instanceof Promise), "a no-store miss");
  assert.equal(unstored.kind === "miss" && unstored.ticket.verdict, "MISS");
});
