/**
 * A look over a big JSON text before it is parsed: how many objects, arrays and object members it holds, how deep
 * it nests and whether any number in it could be out of range. Its cost is linear in the text and it can stop after
 * any number of characters and go on later, so a 10 MiB body is looked at in pieces between turns of the event
 * loop. What it counts is what makes the parse, the cache key and the re-serialisation dear (a member costs ~100
 * times the bytes it takes), so a body over the cap is refused before `JSON.parse` ever sees it. It does not
 * validate: text that is not JSON is left for `JSON.parse` to reject.
 */

/** Where a scan is, between two pieces. */
export interface JsonScan {
  /** Index of the next character to look at. */
  at: number;
  /** Objects, arrays and object members seen so far. */
  items: number;
  depth: number;
  deepest: number;
  /** A number with an exponent or of more than 300 characters: it may parse to Infinity. */
  bigNumber: boolean;
}

export const newScan = (): JsonScan => ({ at: 0, items: 0, depth: 0, deepest: 0, bigNumber: false });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Scans `text` from `scan.at` until at least `until` (a string that starts before it is scanned to its end) or
 * until more than `maxItems` items are seen; returns whether the text has been scanned to its end.
 */
export function scanJson(text: string, scan: JsonScan, until: number, maxItems: number): boolean {
  const end = Math.min(until, text.length);
  let { at, items, depth, deepest } = scan;
  while (at < end && items <= maxItems) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) {
      at = stringEnd(text, at + 1);
      continue;
    }
    if (code === 0x7b || code === 0x5b) { // { [
      items++;
      if (++depth > deepest) deepest = depth;
    } else if (code === 0x7d || code === 0x5d) depth--; // } ]
    else if (code === 0x3a) items++; // a member's colon
    else if (code === 0x2d || (code >= 0x30 && code <= 0x39)) { // - 0-9
      const start = at;
      let exponent = false;
      for (at++; at < text.length; at++) {
        const next = text.charCodeAt(at);
        if (next === 0x65 || next === 0x45) exponent = true; // e E
        else if (!(next >= 0x30 && next <= 0x39) && next !== 0x2e && next !== 0x2b && next !== 0x2d) break;
      }
      if (exponent || at - start > 300) scan.bigNumber = true;
      continue;
    }
    at++;
  }
  scan.at = at;
  scan.items = items;
  scan.depth = depth;
  scan.deepest = deepest;
  return at >= text.length || items > maxItems;
}

/** The index after the quote that closes the string whose text starts at `from` (the text's length if none). */
function stringEnd(text: string, from: number): number {
  let at = from;
  while (true) {
    const quote = text.indexOf('"', at);
    if (quote < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}
