/**
 * `GET /files` and `GET /batches` over every resource of a group, as one cursor list. Each resource is asked for a
 * page from its own cursor, and the pages are merged newest first (oldest first with `order=asc`), up to the
 * client's `limit`. The SDKs ask for the next page with `after` set to the last id of the one before; that id is on
 * one resource only, so where every other resource stood is kept in the store with it (`lst:`, an hour), and the
 * next page goes on from there on each. An `after` the proxy did not hand out is paged on its own resource only.
 * A client key sees only the objects it owns: the pages are read on until `limit` of them came or no resource has
 * more (at most a few rounds).
 */

import type { EndpointConfig, GroupConfig } from "../config/config.ts";
import type { Answer } from "../core/answer.ts";
import { echoed, invalidRequest, ProxyError } from "../errors.ts";
import { isStoreUnavailable } from "../store/patient_read.ts";
import type { Store } from "../store/store.ts";
import { answerText, type CallContext } from "./call.ts";
import { callHolder, type Collection, type ObjectDeps } from "./objects.ts";
import { type ObjectCaller, ownOnly } from "./ownership.ts";
import { type ListCursor, saveCursors } from "./list_cursors.ts";

export interface ListDeps extends ObjectDeps {
  readonly store: Store;
}

interface Item {
  readonly id?: unknown;
  readonly created_at?: unknown;
}

/** The default page size of each list, as OpenAI's. */
const DEFAULT_LIMIT: Readonly<Record<Collection, number>> = { files: 10_000, batches: 20 };
/** Rounds of pages read to fill one page with a client key's own objects. */
const MAX_ROUNDS = 4;
/**
 * Fewest objects asked of each resource per round for a client key (OpenAI's largest batches page): its own may lie
 * behind many of other keys', and a page it gets empty ends the SDKs' paging.
 */
const OWN_SCAN = 100;
/** Most ids of one list remembered with their endpoint. */
const REMEMBER_LISTED = 200;
type Fetched =
  | {
    cursor: ListCursor;
    items: Item[];
    own: boolean[];
    hasMore: boolean;
    error?: undefined;
    refusal?: undefined;
  }
  | { cursor: ListCursor; error: string; refusal?: Answer };

/**
 * One page of `collection` over `cursors`, merged. Resources that failed are named in `x-llmproxy-list-failed`
 * (and asked again on the next page); all of them failing is a 502.
 */
export async function mergedList(
  deps: ListDeps,
  group: GroupConfig,
  collection: Collection,
  query: string,
  cursors: readonly ListCursor[],
  context: CallContext,
  caller: ObjectCaller | null,
): Promise<Answer> {
  const params = new URLSearchParams(query);
  const limit = pageLimit(params.get("limit"), collection);
  const sign = params.get("order") === "asc" ? -1 : 1;
  const page: { item: Item; endpoint: EndpointConfig }[] = [];
  const failed = new Map<string, { cursor: ListCursor; error: string }>();
  let open = [...cursors];
  const answered = new Set<string>();
  const scan = ownOnly(caller) ? OWN_SCAN : 1;
  for (let round = 0; round < MAX_ROUNDS && open.length > 0 && page.length < limit; round++) {
    const fetched = await Promise.all(
      open.map((cursor) =>
        fetchPage(
          deps,
          group,
          collection,
          params,
          cursor,
          Math.max(limit - page.length, scan),
          context,
          caller,
        )
      ),
    );
    // The client's own query, refused by every resource (the same query went to each): the first one's error, as
    // it came. One resource's refusal alone may be its own (a misconfigured one): it is named as failed.
    const refusal = fetched[0]?.refusal;
    if (refusal && answered.size === 0 && fetched.every((one) => one.refusal)) return refusal;
    const live: Page = [];
    for (const one of fetched) {
      if (one.error !== undefined) failed.set(one.cursor.endpoint.id, one);
      else live.push(one);
    }
    for (const one of live) answered.add(one.cursor.endpoint.id);
    const next = mergeInto(page, live, sign, limit);
    open = live.flatMap((one, i) => {
      const last = one.items[next[i] - 1];
      const after = next[i] > 0 && typeof last.id === "string" ? last.id : one.cursor.after;
      return next[i] < one.items.length || one.hasMore ? [{ endpoint: one.cursor.endpoint, after }] : [];
    });
  }
  if (answered.size === 0 && failed.size > 0) {
    throw new ProxyError(
      502,
      "server_error",
      "upstream_failed",
      `No endpoint of model group '${group.name}' could list its ${collection}: ${
        [...failed.values()].map((one) => `${one.cursor.endpoint.id}: ${one.error}`).join("; ")
      }`,
    );
  }
  // Anyone else's list makes its objects reachable through the proxy (a bounded number per list), keeping known
  // owners; a client key's own objects are all recorded already.
  if (!ownOnly(caller)) {
    await Promise.all(
      page.filter(({ item }) => typeof item.id === "string").slice(0, REMEMBER_LISTED).map((
        { item, endpoint },
      ) => deps.objects.rememberFound(item.id as string, endpoint.id)),
    );
  }
  const left = [...open, ...[...failed.values()].map((one) => one.cursor)];
  const lastId = page.at(-1)?.item.id;
  if (left.length > 0 && typeof lastId === "string") {
    await saveCursors(deps.store, caller, params, lastId, group, left);
  }
  const data = page.map(({ item }) => item);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (failed.size > 0) headers["x-llmproxy-list-failed"] = [...failed.keys()].join(",");
  const body = {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: left.length > 0,
  };
  const meta = { endpoint: [...answered].join(","), attempts: cursors.length, cache: null };
  return { status: 200, headers, body: { kind: "bytes", bytes: JSON.stringify(body) }, meta };
}

/** The client's `limit`, or the default; one that is no positive integer is its 400, as OpenAI's. */
function pageLimit(asked: string | null, collection: Collection): number {
  if (asked === null) return DEFAULT_LIMIT[collection];
  const limit = Number(asked);
  if (asked.trim() !== "" && Number.isInteger(limit) && limit > 0) return limit;
  throw invalidRequest(`Invalid 'limit': expected an integer of at least 1, got '${echoed(asked)}'`, "limit");
}

const time = (item: Item) => typeof item.created_at === "number" ? item.created_at : 0;

type Page = (Fetched & { error?: undefined })[];

/**
 * Adds the caller's objects of one round's pages to `page` in order, up to `limit`, while no resource with more to
 * give has run out of what it gave (past that, its next page may hold objects that come first). Returns how many
 * of each page's items were taken.
 */
function mergeInto(
  page: { item: Item; endpoint: EndpointConfig }[],
  live: Page,
  sign: number,
  limit: number,
): number[] {
  const next = live.map(() => 0);
  while (page.length < limit) {
    let best = -1;
    for (let i = 0; i < live.length; i++) {
      if (next[i] < live[i].items.length) {
        if (best < 0 || sign * (time(live[i].items[next[i]]) - time(live[best].items[next[best]])) > 0) {
          best = i;
        }
      } else if (live[i].hasMore) return next;
    }
    if (best < 0) return next;
    const taken = live[best];
    if (taken.own[next[best]]) page.push({ item: taken.items[next[best]], endpoint: taken.cursor.endpoint });
    next[best]++;
  }
  return next;
}

/** One resource's page from its cursor, with which of its objects the caller may see. */
async function fetchPage(
  deps: ListDeps,
  group: GroupConfig,
  collection: Collection,
  params: URLSearchParams,
  cursor: ListCursor,
  limit: number,
  context: CallContext,
  caller: ObjectCaller | null,
): Promise<Fetched> {
  const query = new URLSearchParams(params);
  query.delete("after");
  if (cursor.after !== null) query.set("after", cursor.after);
  query.set("limit", String(limit));
  try {
    const answer = await callHolder(deps, { group, endpoint: cursor.endpoint }, collection, "", context, {
      method: "GET",
      path: collection,
      query: query.toString(),
    });
    const text = await answerText(answer);
    if (answer.status === 400 || answer.status === 422) {
      // A `limit` above the upstream's most, an `order` it does not know: the client's error, not the endpoint's.
      return {
        cursor,
        error: `HTTP ${answer.status}`,
        refusal: { ...answer, body: { kind: "bytes", bytes: text } },
      };
    }
    if (answer.status !== 200) return { cursor, error: `HTTP ${answer.status}` };
    const parsed = JSON.parse(text) as { data?: unknown; has_more?: unknown };
    const listed = (Array.isArray(parsed.data) ? parsed.data : []).filter((item): item is Item =>
      item !== null && typeof item === "object"
    );
    // An upstream that ignores `after` (an older API version) starts from the top again: what comes up to the
    // cursor was given before.
    const at = cursor.after === null ? -1 : listed.findIndex((item) => item.id === cursor.after);
    const items = at < 0 ? listed : listed.slice(at + 1);
    return { cursor, items, own: await owned(deps, items, caller), hasMore: parsed.has_more === true };
  } catch (error) {
    // Whose the listed objects are, the store cannot tell now: the whole list is a 503, not a partial page.
    if (context.signal.aborted || isStoreUnavailable(error)) throw error;
    return { cursor, error: error instanceof ProxyError ? error.code : "invalid answer" };
  }
}

/** Which items the caller may see: all for an admin or keyless caller, a client key only its own. */
async function owned(deps: ListDeps, items: Item[], caller: ObjectCaller | null): Promise<boolean[]> {
  if (!ownOnly(caller)) return items.map(() => true);
  const holders = await Promise.all(
    items.map((item) => typeof item.id === "string" ? deps.objects.holderOf(item.id) : null),
  );
  return holders.map((holder) => holder?.owner === caller.name);
}
