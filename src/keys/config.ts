/**
 * Resolves the `keys:` list, the `prices:` map and `general_settings.usage_stream` of the validated config file
 * into what the key registry, the limits and the usage ledger read.
 */

import { buildPolicy, digestOf, type KeyPolicy, modelMatcher } from "./policy.ts";
import type { KeyEntry, PriceEntry } from "./schema.ts";
import { type Problem, problemAt } from "../config/messages.ts";

/** USD per million tokens of one model. */
export interface Price {
  readonly input: number;
  readonly cachedInput: number;
  readonly output: number;
}

export interface UsageStreamSettings {
  /** The Redis Stream's key, as written (not namespaced). */
  readonly key: string;
  /** Entries kept, about (XADD MAXLEN ~). */
  readonly maxLen: number;
}

export interface KeysConfig {
  /** The `keys:` entries, in file order. */
  readonly entries: readonly KeyPolicy[];
  /** Model name -> price. */
  readonly prices: ReadonlyMap<string, Price>;
  /** Absent: finished requests are not appended to a stream. */
  readonly usageStream?: UsageStreamSettings;
}

export const DEFAULT_STREAM_KEY = "llmproxy-telemetry:usage";
export const DEFAULT_STREAM_MAX_LEN = 100_000;

export interface UsageStreamEntry {
  readonly enabled?: boolean;
  readonly stream_key?: string;
  readonly max_len?: number;
}

export const NO_KEYS: KeysConfig = { entries: [], prices: new Map() };

/** The resolved keys config, and the problems found (duplicate names or keys, both or neither key form). */
export function resolveKeys(
  keys: readonly KeyEntry[] | undefined,
  prices: Readonly<Record<string, PriceEntry>> | undefined,
  usageStream: UsageStreamEntry | undefined,
): { keys: KeysConfig; problems: Problem[] } {
  const problems: Problem[] = [];
  const names = new Map<string, number>();
  const digests = new Map<string, number>();
  const entries = (keys ?? []).flatMap((entry, i) => {
    const at = ["keys", i];
    if ((entry.key === undefined) === (entry.key_sha256 === undefined)) {
      problems.push(problemAt(at, " needs exactly one of 'key' and 'key_sha256'"));
      return [];
    }
    const first = names.get(entry.name);
    if (first !== undefined) {
      problems.push(
        problemAt(
          [...at, "name"],
          ` must be unique, got ${JSON.stringify(entry.name)} again (first at keys[${first}])`,
        ),
      );
    } else names.set(entry.name, i);
    const digest = entry.key_sha256?.toLowerCase() ?? digestOf(entry.key!);
    const same = digests.get(digest);
    if (same !== undefined) problems.push(problemAt(at, ` has the same key as keys[${same}]`));
    else digests.set(digest, i);
    return [buildPolicy(entry.name, digest, "config", entry)];
  });
  const table = new Map(
    Object.entries(prices ?? {}).map(([model, price]) => [model, {
      input: price.input,
      cachedInput: price.cached_input ?? price.input,
      output: price.output,
    }]),
  );
  // A `usage_stream` block turns the stream on unless it says `enabled: false` (as in the Python LLMProxy).
  const stream = usageStream && usageStream.enabled !== false
    ? {
      key: usageStream.stream_key || DEFAULT_STREAM_KEY,
      maxLen: usageStream.max_len || DEFAULT_STREAM_MAX_LEN,
    }
    : undefined;
  return { keys: { entries, prices: table, ...(stream ? { usageStream: stream } : {}) }, problems };
}

/**
 * A `models` entry of `keys:` that matches no model group of the file: a typo (`gpt4o` for `gpt-4o`) that would
 * leave the key refused by the groups it was meant for, with nothing in the log.
 */
export function unmatchedModels(keys: readonly KeyEntry[] | undefined, groups: readonly string[]): Problem[] {
  const shown = groups.length > 10 ? `${groups.slice(0, 10).join(", ")}, ...` : groups.join(", ");
  return (keys ?? []).flatMap((entry, i) =>
    (entry.models ?? []).flatMap((pattern, m) =>
      groups.some(modelMatcher([pattern])) ? [] : [
        problemAt(
          ["keys", i, "models", m],
          ` must match a model group, got ${JSON.stringify(pattern)} (groups: ${shown})`,
        ),
      ]
    )
  );
}
