/**
 * Where a merged list (`merged_list.ts`) stood on each resource after a page, kept in the store under the page's
 * last id (`lst:`, an hour) for the SDKs' next request (`after` = that id), and read back for it.
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import { readPatiently } from "../store/patient_read.ts";
import type { Store } from "../store/store.ts";
import { resources } from "./objects.ts";
import type { ObjectCaller } from "./ownership.ts";

/** Where a list goes on: each resource still to read and its cursor there (null: from its start). */
export interface ListCursor {
  readonly endpoint: EndpointConfig;
  readonly after: string | null;
}

/** How long where a list stood is kept for its next page. */
const CURSOR_TTL_MS = 3600 * 1000;

/** The `purpose`s OpenAI and Azure give files: a list filtered by one has records of its own. */
const PURPOSES = new Set([
  "assistants",
  "assistants_output",
  "batch",
  "batch_output",
  "fine-tune",
  "fine-tune-results",
  "vision",
  "user_data",
  "evals",
]);

/** Where the cursor records live in the store (`lst:...`). */
export const CURSOR_PREFIX = "lst:";

/**
 * The record of where a list stood after the page that ended with `lastId`: per caller, order as the proxy merges
 * (`asc` or `desc`), known `purpose` and object, whatever else the query says. A client varying `order`, or sending
 * purposes of its own (an upstream may take either as it likes), makes no records beyond those: any other purpose
 * shares one record, which keeps the purpose it was made for and is checked on reading it.
 */
function cursorKey(caller: ObjectCaller | null, query: URLSearchParams, lastId: string): string {
  const order = query.get("order") === "asc" ? "asc" : "desc";
  const purpose = query.get("purpose") ?? "";
  return `${CURSOR_PREFIX}${caller?.name ?? ""}\n${order}\n${
    purpose === "" || PURPOSES.has(purpose) ? purpose : "?"
  }\n${lastId}`;
}

/**
 * Where the list that handed out `after` stood, for this caller and query; null when it was not handed out here.
 * Read patiently: no record goes on on one resource only, so a slow store is waited for, and one that cannot tell
 * is a 503 `store_unavailable` rather than a page that leaves the other resources out.
 */
export async function savedCursors(
  deps: { readonly store: Store; readonly config: { readonly groups: readonly GroupConfig[] } },
  caller: ObjectCaller | null,
  query: string,
  after: string,
): Promise<{ group: GroupConfig; cursors: ListCursor[] } | null> {
  const params = new URLSearchParams(query);
  const value = await readPatiently(deps.store, cursorKey(caller, params, after), "where this list stood");
  let saved: { group: string; purpose: string; cursors: [string, string | null][] };
  try {
    saved = JSON.parse(value ?? "null");
    if (!Array.isArray(saved?.cursors)) return null;
  } catch {
    return null;
  }
  // The page was of another list of the caller's that ended on the same object: not where this one stood.
  if (saved.purpose !== (params.get("purpose") ?? "")) return null;
  const group = deps.config.groups.find((g) => g.name === saved.group);
  if (!group || (caller && !caller.allows(group.name))) return null;
  const cursors = saved.cursors.flatMap(([id, after]) => {
    const endpoint = group.endpoints.find((e) => e.id === id);
    return endpoint ? [{ endpoint, after }] : [];
  });
  return { group, cursors };
}

/** The first page of a group's list: every resource from its start. */
export const fromStart = (group: GroupConfig): ListCursor[] =>
  resources(group).map((endpoint) => ({ endpoint, after: null }));

/** Keeps where the list stood on each resource still `left`, under the page's last id. A failed write is left. */
export async function saveCursors(
  store: Store,
  caller: ObjectCaller | null,
  params: URLSearchParams,
  lastId: string,
  group: GroupConfig,
  left: readonly ListCursor[],
): Promise<void> {
  const cursors = left.map((cursor) => [cursor.endpoint.id, cursor.after]);
  const saved = { group: group.name, purpose: params.get("purpose") ?? "", cursors };
  await store.set(cursorKey(caller, params, lastId), JSON.stringify(saved), CURSOR_TTL_MS).catch(() => {});
}
