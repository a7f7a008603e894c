/**
 * An upstream answer's header values, byte by byte (parseHead): tab, visible ASCII and Latin-1 (obs-text) pass as
 * they are; every other control character and DEL make the answer a protocol error. Such a value must never reach a
 * `Response`: Deno 2.9.6's HTTP/1.1 writer panics on it and the process aborts (tests/e2e/hostile_header_test.ts).
 */

import assert from "node:assert/strict";
import { parseHead, UpstreamProtocolError } from "../../src/upstream/http1_wire.ts";
import { test } from "../_support/test.ts";

const head = (value: string) => `HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-value: a${value}b\r\n\r\n`;

test("every byte in an answer's header value: tab, visible ASCII and Latin-1 pass; other controls and DEL refuse", () => {
  for (let byte = 0; byte <= 0xff; byte++) {
    const char = String.fromCharCode(byte);
    // CR and LF end the line the head is split at: tested as bytes inside a value, they are a lone CR or LF.
    const allowed = byte === 0x09 || (byte >= 0x20 && byte !== 0x7f);
    if (allowed) {
      const parsed = parseHead(head(char));
      const value = parsed.headers.find(([name]) => name === "x-value")?.[1];
      assert.equal(value, `a${char}b`, `byte ${byte}`);
    } else {
      assert.throws(() => parseHead(head(char)), UpstreamProtocolError, `byte ${byte}`);
    }
  }
});
