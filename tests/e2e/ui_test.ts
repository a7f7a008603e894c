/**
 * The `/ui` dashboard in a real headless Chromium against the real proxy and simulated upstreams: it loads with no
 * console errors, asks for the admin key once, shows every endpoint, shows one cooling down within 3 s of its
 * upstream failing and available again after, and stays readable at phone width. `UI_SCREENSHOT=docs/dashboard.png`
 * saves the screenshot the README shows.
 */

import assert from "node:assert/strict";
import { SimUpstream } from "../../src/sim/upstream.ts";
import { Chromium, type Page } from "../_support/chromium.ts";
import { endpointYaml, startProxy } from "../_support/proxy.ts";
import { available, test } from "../_support/test.ts";

const includes = (text: string, part: string) =>
  assert.ok(text.includes(part), `no "${part}" in: ${text.slice(0, 300)}`);

const ADMIN_KEY = "sk-admin-dashboard-test";
const TEAM_KEY = "sk-team-a-dashboard-test";

function config(primary: string, fallback: string, other: string): string {
  return [
    "model_groups:",
    "  - model_group: gpt-4o-mini",
    "    models:",
    endpointYaml(primary, { name: "east", weight: 1, extra: "          rpm: 600" }),
    endpointYaml(fallback, { name: "west-fallback", weight: 0 }),
    "  - model_group: text-embedding-3-small",
    "    models:",
    endpointYaml(other, { name: "embed", weight: 1 }),
    "general_settings:",
    "  cooldown_time: 4",
    "  allowed_fails: 1",
    "  cache: true",
    `  admin_keys: [${ADMIN_KEY}]`,
    "keys:",
    "  - name: team-a",
    `    key: ${TEAM_KEY}`,
  ].join("\n") + "\n";
}

async function chat(url: string, content: string): Promise<number> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TEAM_KEY}` },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] }),
  });
  await response.body?.cancel();
  return response.status;
}

const cardState = (id: string) =>
  `(document.querySelector('[data-endpoint="${id}"]')?.dataset.state ?? null)`;

async function logIn(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/ui`);
  await page.waitFor("the key form", `!document.getElementById("login").hidden`);
  await page.evaluate(`(() => {
    document.getElementById("key").value = ${JSON.stringify(ADMIN_KEY)};
    document.getElementById("login").requestSubmit();
  })()`);
  await page.waitFor("the endpoint cards", `document.querySelectorAll("[data-endpoint]").length === 3`);
}

test({
  name: "ui: a real browser sees endpoints, a cooldown within 3 s and the recovery",
  ignore: !available("chromium"),
  timeout: 60_000,
  async fn() {
    await using primary = await SimUpstream.start({ name: "east", quiet: true, latencyMs: 20 });
    await using fallback = await SimUpstream.start({ name: "west", quiet: true, latencyMs: 60 });
    await using other = await SimUpstream.start({ name: "embed", quiet: true });
    await using proxy = await startProxy(config(primary.url, fallback.url, other.url), { logLevel: "warn" });
    await using browser = await Chromium.start();
    await using page = await browser.newPage({ width: 1280, height: 860 });

    for (let i = 0; i < 12; i++) assert.deepEqual(await chat(proxy.url, `warm ${i % 4}`), 200);
    await logIn(page, proxy.url);
    assert.deepEqual(await page.evaluate(cardState("east")), "available");
    const groups = await page.evaluate<string[]>(
      `[...document.querySelectorAll("[data-group] h2")].map((h) => h.textContent)`,
    );
    assert.deepEqual(groups, ["gpt-4o-mini", "text-embedding-3-small"]);
    const eastText = await page.evaluate<string>(
      `document.querySelector('[data-endpoint="east"]').innerText`,
    );
    includes(eastText, "tier 0");
    includes(eastText, "rpm budget");
    assert.deepEqual(await page.evaluate<number>(`document.querySelectorAll(".uplot").length`), 6);
    // Per-key usage: the named key's requests today (the cache answered some of the warm-up).
    await page.waitFor("the key's usage row", `document.querySelector('[data-key="team-a"]') !== null`);
    includes(await page.evaluate<string>(`document.getElementById("keys-panel").innerText`), "team-a");
    // The key is kept for the session only, and nowhere in the page.
    assert.deepEqual(await page.evaluate(`sessionStorage.getItem("llmproxy.adminKey")`), ADMIN_KEY);
    assert(!(await page.evaluate<string>("document.documentElement.outerHTML")).includes(ADMIN_KEY));

    // The primary fails: the request fails over, and the page shows the cooldown within 3 s.
    primary.always({ kind: "status", status: 500 });
    assert.deepEqual(await chat(proxy.url, "fails over"), 200);
    const failedAt = Date.now();
    await page.waitFor("east cooling down", `${cardState("east")} === "cooling_down"`, 3_000);
    const shownAfter = Date.now() - failedAt;
    assert(shownAfter < 3_000, `cooldown shown after ${shownAfter} ms`);
    includes(
      await page.evaluate<string>(`document.querySelector('[data-endpoint="east"] .why').textContent`),
      "failed too many times",
    );
    for (let i = 0; i < 6; i++) assert.deepEqual(await chat(proxy.url, `fallback ${i}`), 200);
    await page.waitFor(
      "the fallback's attempts",
      `document.querySelector('[data-endpoint="west-fallback"]').innerText.includes("7 (0 failed)")`,
    );
    const screenshot = await page.screenshot();
    assert.deepEqual([...screenshot.slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
    const out = Deno.env.get("UI_SCREENSHOT");
    if (out) await Deno.writeFile(out, screenshot);

    // It comes back once its 4 s cooldown is over (the page polls every 1.5 s).
    primary.reset();
    await page.waitFor("east available again", `${cardState("east")} === "available"`, 8_000);
    assert.deepEqual(page.errors, []);

    // Phone width: one column, nothing wider than the screen.
    await using phone = await browser.newPage({ width: 390, height: 844, mobile: true });
    await phone.goto(`${proxy.url}/ui`);
    // A new tab has its own session storage: the key is asked again there.
    await phone.waitFor("the key form", `!document.getElementById("login").hidden`);
    await logIn(phone, proxy.url);
    const widths = await phone.evaluate<number[]>(
      `[document.documentElement.scrollWidth, ...[...document.querySelectorAll(".card")].map((c) => c.getBoundingClientRect().right)]`,
    );
    for (const width of widths) assert(width <= 390, `wider than the phone: ${widths}`);
    assert.deepEqual(phone.errors, []);
  },
});

test("ui: the page is open, its data needs the admin key, and nothing secret is in either", async () => {
  await using upstream = await SimUpstream.start({ name: "a", quiet: true });
  await using proxy = await startProxy(config(upstream.url, upstream.url, upstream.url), {
    logLevel: "warn",
  });
  const page = await fetch(`${proxy.url}/ui`);
  assert.deepEqual(page.status, 200);
  includes(page.headers.get("content-security-policy") ?? "", "script-src 'self'");
  includes(await page.text(), "/ui/assets/uplot.js");
  const script = await fetch(`${proxy.url}/ui/assets/uplot.js`);
  const text = await script.text();
  assert.deepEqual(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  includes(text, "The MIT License");
  includes(text, "uPlot");
  const missing = await fetch(`${proxy.url}/ui/assets/secret.txt`);
  assert.deepEqual(missing.status, 404);
  await missing.body?.cancel();

  const anonymous = await fetch(`${proxy.url}/ui/data`);
  assert.deepEqual(anonymous.status, 401);
  await anonymous.body?.cancel();
  const data = await fetch(`${proxy.url}/ui/data`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.deepEqual(data.status, 200);
  const body = await data.text();
  assert(!body.includes("sk-test-"), "an upstream key leaked into /ui/data");
  assert(!body.includes(ADMIN_KEY));
  assert(!body.includes(TEAM_KEY));
  const snapshot = JSON.parse(body);
  assert.deepEqual(snapshot.groups[0].endpoints.map((e: { id: string }) => e.id), ["east", "west-fallback"]);
  assert.deepEqual(snapshot.groups[0].endpoints[0].history.p50_ms.length, 150);
});
