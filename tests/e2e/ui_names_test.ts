/**
 * The `/ui` dashboard in headless Chromium with names that are HTML: model groups and upstream models from the
 * config are shown as text, never parsed, and a name shaped like an Object member is shown like any other.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { Chromium } from "../_support/chromium.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { available, test } from "../_support/test.ts";

const GROUPS = [
  `<img src=x onerror="window.__xss = 1">`,
  `"><script>window.__xss = 2</script>`,
  "constructor",
];
const MODEL = `<svg onload="window.__xss = 3">`;

test({
  name: "ui: group and model names holding HTML are shown as text and run nothing",
  ignore: !available("chromium"),
  timeout: 60_000,
  async fn() {
    await using sim = await SimUpstream.start({ name: "a", quiet: true });
    await using proxy = await startProxy(
      [
        "model_groups:",
        ...GROUPS.flatMap((group, i) => [
          `  - model_group: ${JSON.stringify(group)}`,
          "    models:",
          endpointYaml(sim.url, { name: `e${i}`, model: JSON.stringify(MODEL) }),
        ]),
        "general_settings:",
        "  cache: false",
      ].join("\n") + "\n",
      { logLevel: "warn" },
    );
    for (const group of GROUPS) {
      const answer = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: group, messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(answer.status, 200);
      await answer.body?.cancel();
    }
    await using browser = await Chromium.start();
    await using page = await browser.newPage({ width: 1280, height: 860 });
    await page.goto(`${proxy.url}/ui`);
    await page.waitFor("the endpoint cards", `document.querySelectorAll("[data-endpoint]").length === 3`);
    const shown = await page.evaluate<string[]>(
      `[...document.querySelectorAll("[data-group] h2")].map((h) => h.textContent)`,
    );
    assert.deepEqual(shown, GROUPS);
    const sub = await page.evaluate<string>(
      `document.querySelector('[data-endpoint="e0"] .sub').textContent`,
    );
    assert.ok(sub.startsWith(MODEL), sub);
    assert.equal(
      await page.evaluate(
        `document.querySelectorAll("#groups img, #groups svg:not(.uplot svg), #groups script").length`,
      ),
      0,
    );
    assert.equal(await page.evaluate(`window.__xss ?? null`), null);
    assert.deepEqual(page.errors, []);
  },
});
