/**
 * A client key's resolved policy: who it is (a name, never the key), which model groups it may use, its limits and
 * budgets, its expiry and how it shares the cache. Built from a `keys:` entry, a runtime key kept in the store, or
 * one of the flat `api_keys` / `admin_keys` (no limits).
 */

import { ANONYMOUS, ANONYMOUS_KEY, type PolicyFields } from "./schema.ts";
import { sha256Hex } from "../util/sha256.ts";

export type KeySource = "config" | "runtime" | "api_keys" | "admin_keys";

export interface KeyPolicy {
  readonly name: string;
  /** What usage, `/metrics` and `/stats` count the key as: its name (`ANONYMOUS_KEY` for one named `anonymous`). */
  readonly id: string;
  /** SHA-256 of the key, hex: the only form in which the proxy holds a key. */
  readonly digest: string;
  readonly source: KeySource;
  /** Model group patterns (`*` wildcards); `["*"]` allows every group. */
  readonly models: readonly string[];
  readonly rpm?: number;
  readonly tpm?: number;
  readonly maxParallel?: number;
  readonly tokensPerDay?: number;
  readonly tokensPerMonth?: number;
  readonly usdPerMonth?: number;
  /** Epoch ms from which the key no longer works. */
  readonly expiresAt?: number;
  /** The expiry as it was given (for listings). */
  readonly expires?: string;
  readonly cache: "shared" | "private";
  /** Whether the key may use the model group. */
  readonly allows: (group: string) => boolean;
  /** True when any limit or budget applies (then the store is asked per request). */
  readonly limited: boolean;
  /** When a runtime key was created (ISO 8601). */
  readonly created?: string;
}

/** SHA-256 of a key, hex. */
export const digestOf = (key: string): string => sha256Hex(key);

/** A matcher for model group patterns: exact names, `*` matching any run of characters. */
export function modelMatcher(patterns: readonly string[]): (group: string) => boolean {
  if (patterns.includes("*")) return () => true;
  const exact = new Set(patterns.filter((pattern) => !pattern.includes("*")));
  const wild = patterns.filter((pattern) => pattern.includes("*")).map((pattern) =>
    new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)
  );
  if (wild.length === 0) return (group) => exact.has(group);
  return (group) => exact.has(group) || wild.some((pattern) => pattern.test(group));
}

/** Epoch ms of an `expires` value: a bare date means 00:00 UTC that day. */
export function expiryTime(expires: string): number {
  return Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(expires) ? `${expires}T00:00:00Z` : expires);
}

export function buildPolicy(
  name: string,
  digest: string,
  source: KeySource,
  fields: PolicyFields,
  created?: string,
): KeyPolicy {
  const models = fields.models && fields.models.length > 0 ? fields.models : ["*"];
  const limits = {
    rpm: fields.rpm,
    tpm: fields.tpm,
    maxParallel: fields.max_parallel,
    tokensPerDay: fields.tokens_per_day,
    tokensPerMonth: fields.tokens_per_month,
    usdPerMonth: fields.usd_per_month,
  };
  const set = Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
  return {
    name,
    id: name === ANONYMOUS ? ANONYMOUS_KEY : name,
    digest,
    source,
    models,
    ...set,
    ...(fields.expires !== undefined
      ? { expires: fields.expires, expiresAt: expiryTime(fields.expires) }
      : {}),
    cache: fields.cache ?? "shared",
    allows: modelMatcher(models),
    limited: Object.keys(set).length > 0,
    ...(created !== undefined ? { created } : {}),
  };
}

/** The policy as the admin routes and the store show it: the config's field names, never the key. */
export function policyView(policy: KeyPolicy): Record<string, unknown> {
  return {
    name: policy.name,
    source: policy.source,
    models: policy.models,
    rpm: policy.rpm ?? null,
    tpm: policy.tpm ?? null,
    max_parallel: policy.maxParallel ?? null,
    tokens_per_day: policy.tokensPerDay ?? null,
    tokens_per_month: policy.tokensPerMonth ?? null,
    usd_per_month: policy.usdPerMonth ?? null,
    expires: policy.expires ?? null,
    cache: policy.cache,
    ...(policy.created !== undefined ? { created: policy.created } : {}),
  };
}

/** The policy fields of a policy (for PATCH: the current ones, to merge the change into). */
export function policyFields(policy: KeyPolicy): PolicyFields {
  const view = policyView(policy);
  const fields: Record<string, unknown> = {};
  for (const field of ["models", "rpm", "tpm", "max_parallel", "tokens_per_day", "tokens_per_month"]) {
    if (view[field] !== null) fields[field] = view[field];
  }
  if (view.usd_per_month !== null) fields.usd_per_month = view.usd_per_month;
  if (view.expires !== null) fields.expires = view.expires;
  fields.cache = policy.cache;
  return fields as PolicyFields;
}
