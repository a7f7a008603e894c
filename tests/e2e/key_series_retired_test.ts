/**
 * Without Prometheus, key churn does not grow the proxy's memory: the per-key series of a revoked key go ten
 * minutes after it was found revoked (checked as requests are counted, at most once a minute), scraped or not.
 * A scraper polling more often than that still sees each revoked key's final count once. Time moves through the
 * proxy's clock (`startProxy`'s `clock`), as a day of production would move it.
 */

import assert from "node:assert/strict";
import { systemClock } from "../../src/core/clock.ts";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const ADMIN = "sk-admin-retire-7f21";
const MINUTE = 60_000;

test("revoked keys' series go ten minutes after, with no scrape; a scrape before then sees their last counts", async () => {
  let skew = 0;
  const clock = { now: () => Date.now() + skew, sleep: systemClock.sleep };
  await using sim = await SimUpstream.start({ quiet: true });
  await using proxy = await startProxy(
    groupYaml([endpointYaml(sim.url, { name: "a" })], [`admin_keys: [${ADMIN}]`]),
    { clock, logLevel: "error" },
  );
  const admin = async (method: string, path: string, json?: unknown) => {
    const response = await fetch(`${proxy.url}/admin/keys${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}` },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    return { status: response.status, body: await response.json() };
  };
  const chat = async (key: string) => {
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hi" }] }),
    });
    await response.body?.cancel();
    assert.equal(response.status, 200);
  };
  const scrape = async () =>
    await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
  const requests = (text: string, name: string) =>
    text.match(new RegExp(`^llmproxy_key_requests_total\\{key="${name}",[^}]*\\} (\\d+)$`, "m"))?.[1];
  const used = async (name: string) => {
    const created = await admin("POST", "", { name });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await chat(created.body.key);
    return created.body.key as string;
  };

  const steady = await used("steady");
  // Forty keys live, are used and revoked, and nobody scrapes.
  for (let i = 0; i < 40; i++) {
    await used(`churn-${i}`);
    assert.equal((await admin("DELETE", `/churn-${i}`)).status, 200);
  }
  const { metrics } = proxy.services.usage;
  assert.equal(metrics.size, 41, "one series per key so far");
  skew += MINUTE;
  await chat(steady); // found revoked now
  skew += 9 * MINUTE;
  await chat(steady);
  assert.equal(metrics.size, 41, "kept for ten minutes, for a scrape to see");
  skew += 2 * MINUTE;
  await chat(steady);
  assert.equal(metrics.size, 1, "gone ten minutes after they were found revoked, with no scrape");
  const text = await scrape();
  assert.equal(requests(text, "churn-0"), undefined, "a revoked key's series outlived its bound");
  assert.equal(requests(text, "steady"), "4");

  // A scraper polling within the bound sees the final count once, then it goes.
  await used("late");
  assert.equal((await admin("DELETE", "/late")).status, 200);
  skew += 2 * MINUTE;
  await chat(steady);
  skew += 5 * MINUTE;
  assert.equal(requests(await scrape(), "late"), "1");
  assert.equal(requests(await scrape(), "late"), undefined);
});
