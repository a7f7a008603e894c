/**
 * The dashboard's per-key usage with more keys than it lists, in headless Chromium against the real proxy:
 * `/ui/data` carries the 50 most used keys and one sum of the others, and the page's rows add up to every request.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { MAX_KEYS_SHOWN } from "../../src/ui/key_usage.ts";
import { Chromium } from "../_support/chromium.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { available, test } from "../_support/test.ts";

const ADMIN_KEY = "sk-admin-keys-test";
const KEYS = 80;
const keyOf = (i: number) => `sk-team-${String(i).padStart(2, "0")}-keys-test`;

test({
  name: "ui: 80 keys used today: the 50 most used are listed, most first, the other 30 summed in one row",
  ignore: !available("chromium"),
  timeout: 60_000,
  async fn() {
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    await using proxy = await startProxy(
      [
        "model_groups:",
        "  - model_group: gpt-4o-mini",
        "    models:",
        endpointYaml(sim.url, { name: "a" }),
        "general_settings:",
        "  cache: false",
        `  admin_keys: [${ADMIN_KEY}]`,
        "keys:",
        ...Array.from({ length: KEYS }, (_, i) => [`  - name: team-${i}`, `    key: ${keyOf(i)}`]).flat(),
      ].join("\n") + "\n",
      { logLevel: "warn" },
    );
    // team-i sends one request, team-7 four more: 84 in all.
    const senders = [...Array.from({ length: KEYS }, (_, i) => i), 7, 7, 7, 7];
    for (let i = 0; i < senders.length; i += 10) {
      await Promise.all(
        senders.slice(i, i + 10).map(async (key) => {
          const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${keyOf(key)}` },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
          });
          assert.equal(answer.status, 200);
          await answer.body?.cancel();
        }),
      );
    }
    const data =
      await (await fetch(`${proxy.url}/ui/data`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }))
        .json();
    assert.equal(Object.keys(data.keys).length, MAX_KEYS_SHOWN);
    assert.equal(data.keys["team-7"].requests, 5);
    assert.equal(data.other_keys.keys, KEYS - MAX_KEYS_SHOWN);
    assert.equal(data.other_keys.figures.requests, KEYS - MAX_KEYS_SHOWN);
    assert.ok(data.other_keys.figures.input_tokens > 0);

    await using browser = await Chromium.start();
    await using page = await browser.newPage({ width: 1280, height: 860 });
    await page.goto(`${proxy.url}/ui`);
    await page.waitFor("the key form", `!document.getElementById("login").hidden`);
    await page.evaluate(`(() => {
      document.getElementById("key").value = ${JSON.stringify(ADMIN_KEY)};
      document.getElementById("login").requestSubmit();
    })()`);
    await page.waitFor("the key rows", `document.querySelectorAll("#keys tr[data-key]").length > 0`);
    const rows = await page.evaluate<string[][]>(
      `[...document.querySelectorAll("#keys tr")].slice(1).map((tr) => [...tr.cells].map((td) => td.textContent))`,
    );
    assert.equal(rows.length, MAX_KEYS_SHOWN + 1);
    assert.deepEqual(rows[0].slice(0, 2), ["team-7", "5"]);
    assert.deepEqual(rows.at(-1)!.slice(0, 2), [
      `${KEYS - MAX_KEYS_SHOWN} other keys`,
      `${KEYS - MAX_KEYS_SHOWN}`,
    ]);
    const total = rows.reduce((sum, row) => sum + Number(row[1].replaceAll(",", "")), 0);
    assert.equal(total, senders.length, "the rows add up to every request");
    assert.deepEqual(page.errors, []);
  },
});
