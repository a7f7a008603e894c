/**
 * The `event` and `data` fields of one SSE event read from its decoded text, for a reader that decodes each event's
 * bytes anyway (the cache's recorder keeps the text): one decode per event instead of one per field and one for
 * the text. Reads the fields exactly as the scanner (`scanner.ts`) reads them from the bytes: lines end at `\r\n`,
 * `\r` or `\n`; a line that starts with `:` is a comment; the name runs to the first `:` (or the line's end), one
 * space after it is dropped; `data` lines are joined with `\n`, the last `event` wins. A value's leading BOM is
 * dropped, as the scanner's decoder drops it.
 */

const LF = 10;
const COLON = 58;
const SPACE = 32;
const BOM = 0xfeff;

export class TextFields {
  /** The `event:` field of the last event read, or null when absent. */
  event: string | null = null;
  /** Its `data:` lines joined with `\n`, or null when it has none. */
  data: string | null = null;

  /**
   * Reads the fields of `text`, one whole event (line breaks included). `bomFirst`: the event's bytes began with a
   * BOM, which the decoder dropped; it belongs to the first line's field name, so that line is no field that matters.
   */
  read(text: string, bomFirst: boolean): void {
    let event: string | null = null;
    let data: string | null = null;
    const end = text.length;
    let start = 0;
    let skip = bomFirst;
    // Next CR and LF at or after `start` (-1: none left), each searched again only once passed.
    let cr = -2;
    let lf = -2;
    while (start < end) {
      if (lf !== -1 && lf < start) lf = text.indexOf("\n", start);
      if (cr !== -1 && cr < start) cr = text.indexOf("\r", start);
      let at = cr === -1 ? lf : lf === -1 ? cr : cr < lf ? cr : lf;
      if (at === -1) at = end;
      const next = at === cr && text.charCodeAt(at + 1) === LF ? at + 2 : at + 1;
      if (skip) skip = false;
      else if (at > start && text.charCodeAt(start) !== COLON) {
        let colon = text.indexOf(":", start);
        if (colon === -1 || colon > at) colon = at;
        const length = colon - start;
        const isData = length === 4 && text.startsWith("data", start);
        if (isData || (length === 5 && text.startsWith("event", start))) {
          let from = colon < at ? colon + 1 : at;
          if (from < at && text.charCodeAt(from) === SPACE) from++;
          if (from < at && text.charCodeAt(from) === BOM) from++;
          const value = text.slice(from, at);
          if (!isData) event = value;
          else data = data === null ? value : data + "\n" + value;
        }
      }
      start = next;
    }
    this.event = event;
    this.data = data;
  }
}
