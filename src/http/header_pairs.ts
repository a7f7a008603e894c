/**
 * Every header of a client's request, read without leaving copies on the request.
 *
 * Why: iterating a served request's `Headers` (`forEach`, `for...of`) makes Deno build a sorted, combined copy of the
 * header list and keep it on the object (an immutable `Headers` caches its iteration) for as long as the request
 * lives: for a streamed answer, the whole stream. `has()` keeps the lower-cased names likewise. Together ~0.65 KB per
 * open stream (heap snapshot of 1,000 held streams), which the garbage collector copies and promotes with everything
 * else a stream holds. (The plain list Deno builds anyway when the handler returns, for a request whose headers were
 * read.) A served request's `Headers` reads its list from the request's runtime side (Deno 2.9: its `header target`,
 * whose `headerList` getter makes a fresh list each time, kept by nobody); where that is not reachable (another
 * runtime, a `Headers` made by hand, a list already built) the pairs come from `forEach` as before.
 *
 * The pairs are as the client sent them: a header sent twice comes twice (`forEach` would join the values with
 * ", "), and a name keeps the client's case (`forEach` lower-cases): compare names lower-cased.
 */

import type { HeaderReader } from "../core/header_reader.ts";

export type HeaderPair = readonly [name: string, value: string];

/**
 * A request's headers read from their pairs, made once per request (served_request.ts): `get` looks a name up in
 * them (in any case, as `Headers.get`), no runtime call and no `Headers` object per request.
 */
export class PairHeaders implements HeaderReader {
  constructor(readonly pairs: readonly HeaderPair[]) {}

  get(name: string): string | null {
    name = name.toLowerCase(); // the same string when it is (as every caller asks)
    let found: string | null = null;
    const pairs = this.pairs;
    for (let i = 0; i < pairs.length; i++) {
      const key = pairs[i][0];
      if (key.length !== name.length || (key !== name && key.toLowerCase() !== name)) continue;
      found = found === null ? pairs[i][1] : `${found}, ${pairs[i][1]}`;
    }
    return found;
  }
}

interface HeaderTarget {
  readonly headerList: readonly HeaderPair[];
}

let targetSlot: symbol | null | undefined;

/** The symbol under which Deno's `Headers` keeps its lazy source, found once (null: this runtime has none). */
function slot(headers: Headers): symbol | null {
  if (targetSlot !== undefined) return targetSlot;
  const found = Object.getOwnPropertySymbols(headers).find((symbol) =>
    symbol.description === "header target"
  );
  return targetSlot = found ?? null;
}

/** The request's headers as name/value pairs, in the client's order and case. */
export function headerPairs(reader: HeaderReader): readonly HeaderPair[] {
  if (reader instanceof PairHeaders) return reader.pairs;
  const headers = reader as Headers;
  const at = slot(headers);
  const target = at === null ? null : (headers as unknown as Record<symbol, HeaderTarget | null>)[at];
  if (target != null) {
    try {
      const list = target.headerList;
      if (Array.isArray(list)) return list;
    } catch {
      // the request is closed: read the Headers object itself
    }
  }
  const pairs: HeaderPair[] = [];
  headers.forEach((value, name) => {
    pairs.push([name, value]);
  });
  return pairs;
}
