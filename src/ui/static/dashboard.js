// The /ui dashboard: polls /ui/data every POLL_MS with the admin key (asked once, kept in sessionStorage for the
// browser session) and draws every model group and endpoint. Plain browser JavaScript, no build step; the charts
// are uPlot (served by the proxy next to this file).
/* global uPlot */
"use strict";

const POLL_MS = 1500;
const KEY_ITEM = "llmproxy.adminKey";
const CHART_HEIGHT = 110;
const REASONS = {
  failures: "failed too many times in a row (errors, timeouts, refused connections)",
  rate_limit: "rate limited (a 429, or no requests or tokens left until the reset)",
};

const $ = (id) => document.getElementById(id);
const cards = new Map();
let layout = "";
let timer;

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const number = (value) => value === null || value === undefined ? "–" : value.toLocaleString("en-US");
const time = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
const ratio = (used, limit) => `${number(used)} / ${number(limit)}`;

function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

function chart(container, series, now) {
  const options = {
    width: Math.max(200, container.clientWidth),
    height: CHART_HEIGHT,
    // Slots without attempts are gaps; lines join the slots around them, and points mark lone measurements.
    series: [{}, ...series.map((line) => ({ spanGaps: true, points: { show: true, size: 4 }, ...line }))],
    axes: [{ size: 28 }, { size: 48 }],
    scales: { x: { time: true } },
    cursor: { drag: { x: false, y: false } },
    legend: { live: false },
  };
  const plot = new uPlot(options, [[now / 1000], ...series.map(() => [null])], container);
  new ResizeObserver(() =>
    plot.setSize({ width: Math.max(200, container.clientWidth), height: CHART_HEIGHT })
  )
    .observe(container);
  return plot;
}

function buildCard(endpoint, now) {
  const card = element("article", { class: "card", "data-endpoint": endpoint.id });
  const title = element("h3");
  title.append(element("span", {}, endpoint.id), element("span", { class: "badge" }));
  const sub = element("p", { class: "sub" });
  const why = element("p", { class: "why" });
  const figures = element("dl", { class: "figures" });
  const latency = element("div", { class: "chart latency" });
  const errors = element("div", { class: "chart errors" });
  card.append(title, sub, why, figures, latency, errors);
  return {
    card,
    badge: title.lastChild,
    sub,
    why,
    figures,
    latency: chart(latency, [
      { label: "p50 ms", stroke: "#2f6fde", width: 1.5 },
      { label: "p99 ms", stroke: "#b35900", width: 1.5 },
    ], now),
    errors: chart(errors, [{ label: "errors %", stroke: "#c4291c", fill: "rgba(196,41,28,0.12)" }], now),
  };
}

function figureList(dl, pairs) {
  dl.replaceChildren(
    ...pairs.flatMap(([name, value]) => [element("dt", {}, name), element("dd", {}, value)]),
  );
}

function updateCard(view, endpoint, data) {
  const cooling = endpoint.state === "cooling_down";
  view.card.dataset.state = endpoint.state;
  view.badge.textContent = cooling ? `cooling down until ${time(endpoint.cooldown_until)}` : "available";
  view.sub.textContent = `${endpoint.model} · ${endpoint.provider} · ${endpoint.host} · ${endpoint.tier}` +
    ` · weight ${endpoint.weight}`;
  view.why.textContent = cooling ? `why: ${REASONS[endpoint.cooldown_reason] ?? "unknown"}` : "";
  view.why.hidden = !cooling;
  const pairs = [
    ["in flight", number(endpoint.in_flight)],
    ["attempts", `${number(endpoint.requests)} (${number(endpoint.failures)} failed)`],
    ["failures in a row", number(endpoint.consecutive_failures)],
  ];
  const limit = endpoint.rate_limit;
  if (limit) {
    pairs.push(["requests left", ratio(limit.remaining_requests, limit.limit_requests)]);
    pairs.push(["tokens left", ratio(limit.remaining_tokens, limit.limit_tokens)]);
  }
  if (endpoint.budget?.rpm) {
    pairs.push(["rpm budget", ratio(endpoint.budget.rpm.used, endpoint.budget.rpm.limit)]);
  }
  if (endpoint.budget?.tpm) {
    pairs.push(["tpm budget", ratio(endpoint.budget.tpm.used, endpoint.budget.tpm.limit)]);
  }
  figureList(view.figures, pairs);
  const history = endpoint.history;
  const xs = history.attempts.map((_, i) => (data.history_start + i * data.slot_ms) / 1000);
  view.latency.setData([xs, history.p50_ms, history.p99_ms]);
  view.errors.setData([xs, history.error_rate.map((rate) => rate === null ? null : rate * 100)]);
}

function renderGroups(data) {
  const shape = JSON.stringify(data.groups.map((group) => [group.name, group.endpoints.map((e) => e.id)]));
  if (shape !== layout) {
    layout = shape;
    cards.clear();
    const sections = data.groups.map((group) => {
      const section = element("section", { class: "group", "data-group": group.name });
      const grid = element("div", { class: "grid" });
      section.append(element("h2", {}, group.name), grid);
      for (const endpoint of group.endpoints) {
        const view = buildCard(endpoint, data.now);
        cards.set(`${group.name}\n${endpoint.id}`, view);
        grid.append(view.card);
      }
      return section;
    });
    $("groups").replaceChildren(...sections);
  }
  for (const group of data.groups) {
    for (const endpoint of group.endpoints) {
      updateCard(cards.get(`${group.name}\n${endpoint.id}`), endpoint, data);
    }
  }
}

function render(data) {
  const endpoints = data.groups.flatMap((group) => group.endpoints);
  const cooling = endpoints.filter((endpoint) => endpoint.state === "cooling_down").length;
  const inFlight = endpoints.reduce((sum, endpoint) => sum + endpoint.in_flight, 0);
  const summary = $("summary");
  summary.replaceChildren(
    element("b", {}, `${endpoints.length - cooling}/${endpoints.length}`),
    " endpoints available · ",
    element("b", {}, number(inFlight)),
    ` in flight · store ${data.store.kind} ${data.store.status} · up ${duration(data.uptime_seconds)}`,
  );
  renderGroups(data);
  renderKeys(data.keys, data.other_keys);
  const cache = data.cache;
  $("cache-panel").hidden = !cache.enabled;
  $("cache").replaceChildren(
    ...[
      ["hit ratio", cache.hit_ratio === null ? "–" : `${Math.round(cache.hit_ratio * 1000) / 10}%`],
      ["hits", number(cache.hits + cache.coalesced)],
      ["misses", number(cache.misses)],
      ["entries", number(cache.entries)],
      ["bytes", number(cache.bytes)],
    ].map(([name, value]) => {
      const box = element("div");
      box.append(element("dt", {}, name), element("dd", {}, value));
      return box;
    }),
  );
  $("status").textContent = `updated ${time(data.now)}`;
}

const KEY_COLUMNS = [
  ["requests", "requests"],
  ["input_tokens", "input tokens"],
  ["output_tokens", "output tokens"],
  ["cache_hits", "cache hits"],
  ["usd", "USD"],
];

/** The most used keys first (the server sends at most 50), then one row summing the others. */
function renderKeys(keys, others) {
  const names = Object.keys(keys ?? {}).sort((a, b) =>
    (keys[b].requests ?? 0) - (keys[a].requests ?? 0) || (a < b ? -1 : a > b ? 1 : 0)
  );
  $("keys-panel").hidden = names.length === 0;
  if (names.length === 0) return;
  const head = element("tr");
  head.append(element("th", {}, "key"), ...KEY_COLUMNS.map(([, title]) => element("th", {}, title)));
  const row = (label, figures, attributes) => {
    const tr = element("tr", attributes);
    const cells = KEY_COLUMNS.map(([field]) => {
      const value = figures[field];
      return element("td", {}, field === "usd" && value !== undefined ? value.toFixed(4) : number(value));
    });
    tr.append(element("td", {}, label), ...cells);
    return tr;
  };
  const rows = names.map((name) => row(name, keys[name], { "data-key": name }));
  if (others) rows.push(row(`${number(others.keys)} other keys`, others.figures, { "data-others": "" }));
  $("keys").replaceChildren(head, ...rows);
}

function askForKey(message) {
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key").focus();
}

const keyNeeded = document.querySelector('meta[name="llmproxy-key"]')?.content === "yes";

async function poll() {
  clearTimeout(timer);
  const key = sessionStorage.getItem(KEY_ITEM);
  if (keyNeeded && !key) return askForKey("");
  try {
    const response = await fetch("/ui/data", {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      sessionStorage.removeItem(KEY_ITEM);
      $("forget").hidden = true;
      askForKey(key ? "That key was not accepted." : "");
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    $("login").hidden = true;
    $("forget").hidden = !key;
    render(data);
  } catch (error) {
    $("status").textContent = `could not reach the proxy (${error.message}); retrying`;
  }
  timer = setTimeout(poll, POLL_MS);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
  $("key").value = "";
  poll();
});

$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_ITEM);
  clearTimeout(timer);
  $("groups").replaceChildren();
  layout = "";
  askForKey("");
});

poll();
