/**
 * Key churn does not grow `/metrics`: the per-key series of a revoked runtime key are written one last time, at the
 * first scrape after its last request (one still running when the key is revoked included), then dropped. `/stats`
 * keeps the day's usage of every key, revoked ones too: it is the day's record, not a live series.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { endpointYaml, groupYaml, startProxy } from "../_support/proxy.ts";
import { test } from "../_support/test.ts";

const ADMIN = "sk-admin-churn-5e0b";

test({
  name: "200 runtime keys created, used and revoked: /metrics stays the size it was after the first ten",
  timeout: 60_000,
  async fn() {
    await using sim = await SimUpstream.start({ quiet: true, chunks: 3, chunkDelayMs: 100 });
    await using proxy = await startProxy(groupYaml([endpointYaml(sim.url, { name: "a" })], [
      `admin_keys: [${ADMIN}]`,
    ]));
    const admin = (method: string, path: string, json?: unknown) =>
      fetch(`${proxy.url}/admin/keys${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}` },
        body: json === undefined ? undefined : JSON.stringify(json),
      }).then(async (response) => ({ status: response.status, body: await response.json() }));
    const chat = async (key: string, stream = false) => {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: "gpt-test", stream, messages: [{ role: "user", content: "hi" }] }),
      });
      return { status: response.status, text: () => response.text() };
    };
    const metrics = async () =>
      await (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    const requests = (text: string, name: string) =>
      text.match(new RegExp(`^llmproxy_key_requests_total\\{key="${name}",[^}]*\\} (\\d+)$`, "m"))?.[1];

    // One key's whole life: its series is there while it lives, and at the first scrape after its revocation.
    const cycle = async (name: string) => {
      const created = await admin("POST", "", { name, rpm: 1000 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const answer = await chat(created.body.key);
      assert.equal(answer.status, 200);
      await answer.text();
      assert.equal((await admin("DELETE", `/${name}`)).status, 200);
    };
    const sizes: number[] = [];
    for (let i = 0; i < 200; i++) {
      await cycle(`churn-${i}`);
      const text = await metrics();
      assert.equal(requests(text, `churn-${i}`), "1", "written one last time after its revocation");
      assert.equal(requests(text, `churn-${i - 1}`), undefined, "dropped after that");
      if (i === 9 || i === 199) sizes.push(text.length);
    }
    assert.ok(sizes[1] <= sizes[0] + 200, `/metrics grew from ${sizes[0]} to ${sizes[1]} bytes`);

    // A request still running when its key is revoked: its series comes after it ends, then goes.
    const created = await admin("POST", "", { name: "leaving" });
    const running = await chat(created.body.key, true);
    assert.equal(running.status, 200);
    assert.equal((await admin("DELETE", "/leaving")).status, 200);
    assert.equal(requests(await metrics(), "leaving"), undefined, "not counted before its end");
    assert.match(await running.text(), /\[DONE\]/);
    assert.equal(requests(await metrics(), "leaving"), "1");
    assert.equal(requests(await metrics(), "leaving"), undefined);

    // The day's usage keeps every key, revoked ones too.
    const stats = await (await fetch(`${proxy.url}/stats`, { headers: { authorization: `Bearer ${ADMIN}` } }))
      .json();
    assert.equal(stats.usage_today["churn-0"].requests, 1);
    assert.equal(stats.usage_today["churn-199"].requests, 1);
    assert.equal(stats.usage_today["leaving"].requests, 1);
  },
});
