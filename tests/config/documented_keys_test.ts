/**
 * The config keys the loader knows against what a user reads: every key is documented (README, or
 * RESPONSES_API.md for the Responses keys), and every default `llmproxy.yaml.example` states is the one the code
 * applies. (`load_test.ts` checks that the example names every key and loads, commented-out options included.)
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/parse.ts";
import {
  CacheParamsSchema,
  EndpointSchema,
  GeneralSettingsSchema,
  KNOWN_KEYS,
  ModelGroupSchema,
} from "../../src/config/schema.ts";
import { DEFAULT_STREAM_MAX_LEN } from "../../src/keys/config.ts";
import { PriceSchema } from "../../src/keys/schema.ts";
import { test } from "../_support/test.ts";

const read = (name: string) => Deno.readTextFile(new URL(`../../${name}`, import.meta.url));

const MiB = 1024 * 1024;

/** Code spans of the prose and the lines of the fenced blocks of a Markdown text. */
function codeOf(markdown: string): { spans: string[]; blocks: string[] } {
  const fence = /^```\w*\n([\s\S]*?)^```/gm;
  const blocks = [...markdown.matchAll(fence)].map((match) => match[1]);
  const spans = [...markdown.replace(fence, "").matchAll(/`([^`]+)`/g)].map((match) => match[1]);
  return { spans, blocks };
}

/** Whether `key` is named in a code span (`general_settings.key`, `key: 1`) or written as `key:` in a block. */
function documents(code: { spans: string[]; blocks: string[] }, key: string): boolean {
  const word = new RegExp(`(^|[^\\w-])${key}($|[^\\w-])`);
  const written = new RegExp(`(^|[\\s{,#-])${key}:`, "m");
  return code.spans.some((span) => word.test(span)) || code.blocks.some((block) => written.test(block));
}

test("every config key the loader knows is documented in README (or RESPONSES_API.md)", async () => {
  const code = codeOf(`${await read("README.md")}\n${await read("RESPONSES_API.md")}`);
  const keys = [...Object.values(KNOWN_KEYS).flat(), ...Object.keys(PriceSchema.shape)];
  const missing = [...new Set(keys)].filter((key) => !documents(code, key));
  assert.deepEqual(missing, [], "config keys the docs never name");
});

/**
 * The text under a Markdown heading (`## Title`), its subsections included, up to the next heading of its level or
 * higher; lines of fenced blocks are never taken for headings (a YAML comment starts with `# `).
 */
function section(markdown: string, heading: string): string {
  const level = heading.indexOf(" ");
  const lines = markdown.split("\n");
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `no heading '${heading}'`);
  let fenced = false;
  let end = start + 1;
  for (; end < lines.length; end++) {
    if (lines[end].startsWith("```")) fenced = !fenced;
    const hashes = lines[end].match(/^(#+) /)?.[1].length;
    if (!fenced && hashes !== undefined && hashes <= level) break;
  }
  return lines.slice(start, end).join("\n");
}

/** The fields of a config block, each with the README section that describes the block. */
const BLOCK_SECTIONS: { block: string; fields: readonly string[]; heading: string }[] = [
  { block: "params.azure_ad", fields: KNOWN_KEYS.azure_ad, heading: "## Azure Entra ID instead of API keys" },
  { block: "keys", fields: KNOWN_KEYS.keys, heading: "## Teams and keys" },
  { block: "general_settings.usage_stream", fields: KNOWN_KEYS.usage_stream, heading: "### Usage and cost" },
  { block: "prices", fields: Object.keys(PriceSchema.shape), heading: "### Usage and cost" },
];

test("each field of azure_ad, keys, usage_stream and prices is documented in its block's README section", async () => {
  const readme = await read("README.md");
  const missing = BLOCK_SECTIONS.flatMap(({ block, fields, heading }) => {
    const code = codeOf(section(readme, heading));
    return fields.filter((field) => !documents(code, field)).map((field) => `${block}.${field} (${heading})`);
  });
  assert.deepEqual(missing, [], "fields their block's section never names");
});

/** What the code applies when a key is left out, by the key's name (`keys.` for the key policy's). */
function codeDefaults(): Map<string, unknown> {
  const minimal =
    "model_groups:\n  - model_group: g\n    models:\n      - { model: m, params: { api_key: k } }\n";
  const settings = parseConfig(minimal, "x", () => undefined).settings;
  const group = ModelGroupSchema.parse({ model_group: "g", models: [{ model: "m" }] });
  const endpoint = EndpointSchema.parse({ model: "m" });
  return new Map<string, unknown>([
    ...Object.entries(GeneralSettingsSchema.parse({})).filter(([key]) => key !== "cache_params"),
    ...Object.entries(CacheParamsSchema.parse({})),
    ["routing", group.routing],
    ["aliases", group.aliases],
    ["list_aliases", group.list_aliases],
    ["content_filter_fallback", group.content_filter_fallback],
    ["weight", endpoint.weight],
    ["priority", endpoint.priority],
    // Applied when the file is resolved.
    ["max_body_bytes", settings.maxBodyBytes],
    ["max_entry_bytes", settings.cacheMaxEntryBytes],
    ["max_inflight_body_bytes", settings.limits.maxInflightBodyBytes],
    ["upstream_client", settings.upstreamClient],
    ["max_len", DEFAULT_STREAM_MAX_LEN],
    ["enabled", true],
  ]);
}

/** `2 MiB` -> 2097152, `300 seconds` -> 300, `false` -> false, `none` -> [], `off` -> 0, a word as itself. */
function statedValue(text: string): unknown {
  const [first, unit] = text.trim().split(/\s+/);
  if (/^-?\d+(\.\d+)?$/.test(first)) return Number(first) * (unit === "MiB" ? MiB : 1);
  if (first === "true" || first === "false") return first === "true";
  if (first === "none") return [];
  if (first === "off") return 0;
  return first.replace(/[).]+$/, "");
}

/** Each option line of the example whose comment states a default: the key, where, and the default's text. */
function statedDefaults(example: string): { key: string; line: number; stated: string }[] {
  const out: { key: string; line: number; stated: string }[] = [];
  let section = "";
  example.split("\n").forEach((text, i) => {
    const top = text.match(/^(?:# )?([a-z_]+):/);
    if (top) section = top[1];
    const option = text.match(/^\s*(?:#\s*)?(?:-\s+)?([a-z_]+):.*?#.*?\b[Dd]efault:?\s+([^;:(,]+)/);
    if (!option) return;
    out.push({ key: section === "keys" ? `keys.${option[1]}` : option[1], line: i + 1, stated: option[2] });
  });
  return out;
}

test("llmproxy.yaml.example states each default the code applies, and only true ones", async () => {
  const example = await read("llmproxy.yaml.example");
  const defaults = codeDefaults();
  const stated = statedDefaults(example);
  const wrong = stated.filter(({ key }) => defaults.has(key)).flatMap(({ key, line, stated }) => {
    const value = statedValue(stated);
    return JSON.stringify(value) === JSON.stringify(defaults.get(key)) ? [] : [
      `line ${line}: ${key} says default ${JSON.stringify(value)}, the code applies ${
        JSON.stringify(defaults.get(key))
      }`,
    ];
  });
  assert.deepEqual(wrong, [], "defaults the example gets wrong");
  const unstated = [...defaults.keys()].filter((key) =>
    !stated.some((entry) => entry.key === key) && !["api_keys", "admin_keys"].includes(key)
  );
  // api_keys and admin_keys: "Client keys. Default: none" heads their block.
  assert.match(example, /# Client keys\. Default: none/);
  assert.deepEqual(unstated, [], "keys with a default the example does not state");
});

/** The rows of README's settings tables: each key of the first cell (`a`, `b`) with the default cell's text. */
function settingsRows(readme: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const table of readme.split(/\n(?=\| setting )/).slice(1)) {
    for (const line of table.split("\n").slice(2)) {
      if (!line.startsWith("|")) break;
      const [keys, stated] = line.split("|").slice(1, 3);
      for (const [, key] of keys.matchAll(/`(?:general_settings\.|cache_params\.|params\.)?([a-z_]+)`/g)) {
        rows.set(key, stated.trim());
      }
    }
  }
  return rows;
}

test("README's settings tables name every key of a model group, an endpoint, its params, general_settings and cache_params, each default the code's", async () => {
  const rows = settingsRows(await read("README.md"));
  const named = (key: string) =>
    rows.has(key) || key === "cache_params" || (key.startsWith("redis_") && rows.has("redis_url")) ||
    ["max_request_body_bytes", "max_cache_entry_bytes", "http_max_connections", "redis_ssl_cert_reqs"]
      .includes(key);
  const keys = [
    ...KNOWN_KEYS.model_groups,
    ...KNOWN_KEYS.models,
    ...KNOWN_KEYS.params,
    ...KNOWN_KEYS.general_settings,
    ...KNOWN_KEYS.cache_params.filter((key) => !PYTHON_CACHE_KEYS.has(key)),
  ];
  assert.deepEqual(keys.filter((key) => !named(key)), [], "settings no README table names");
  const defaults = codeDefaults();
  const wrong = [...rows].flatMap(([key, stated]) => {
    if (defaults.get(key) === undefined) return [];
    // `604800 (7 days)`: the number; `4 x max_body_bytes (40 MiB)`: the figure in brackets; `100,000`: 100000.
    const plain = stated.replaceAll("`", "").replace(/(\d),(\d)/g, "$1$2");
    const text = /^[\d.]+( MiB)?( \(|$)/.test(plain)
      ? plain
      : plain.match(/\(([^)]*\d[^)]*)\)/)?.[1] ?? plain;
    const value = statedValue(text);
    return JSON.stringify(value) === JSON.stringify(defaults.get(key)) ? [] : [
      `${key}: README says ${JSON.stringify(value)}, the code applies ${JSON.stringify(defaults.get(key))}`,
    ];
  });
  assert.deepEqual(wrong, [], "defaults README gets wrong");
});

/** The Python version's Redis keys in `cache_params`: README's "Coming from the Python LLMProxy" names them. */
const PYTHON_CACHE_KEYS = new Set(["type", "host", "port", "password"]);
