/**
 * The usage stripper (`usageStripper`) at every pair of cuts of a stream: what the client gets is the stream
 * without what asking for usage added, byte for byte, however the upstream's bytes were cut and whatever its line
 * ends (CR, LF, CR-LF, mixed), with the chunks it hands out kept until the end (they are views of shared slabs:
 * none may be written over by a later one).
 */

import assert from "node:assert/strict";
import { usageStripper } from "../../src/usage/stream_usage_option.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const chunk = (content: string, usage = true) =>
  `data: {"id":"c1","choices":[{"index":0,"delta":{"content":"${content}"}}]${usage ? ',"usage":null' : ""}}`;
const USAGE_CHUNK = 'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"total_tokens":5}}';

/** All the chunks out of the stripper, each kept as handed out and read only once the stream is over. */
async function strip(parts: Uint8Array[]): Promise<string> {
  const out: Uint8Array[] = [];
  const stream = ReadableStream.from(parts).pipeThrough(usageStripper());
  for await (const piece of stream) out.push(piece);
  return out.map((piece) => decoder.decode(piece, { stream: true })).join("") + decoder.decode();
}

test("the stripped stream is the same at every pair of cuts, its chunks kept to the end", async () => {
  const cases = [
    {
      asked: [chunk("Hé"), chunk("lo"), USAGE_CHUNK, "data: [DONE]"].join("\n\n") + "\n\n",
      plain: [chunk("Hé", false), chunk("lo", false), "data: [DONE]"].join("\n\n") + "\n\n",
    },
    {
      // CRLF, the usage chunk last, and a last event with no blank line after it.
      asked: [chunk("a"), ": keep-alive", USAGE_CHUNK].join("\r\n\r\n") + `\r\n\r\n${chunk("z")}`,
      plain: [chunk("a", false), ": keep-alive"].join("\r\n\r\n") + `\r\n\r\n${chunk("z", false)}`,
    },
    {
      // Mixed line ends: an LF line then a CR-LF blank line, CR-LF then CR, LF then CR, CR then CR-LF.
      asked: `${chunk("a")}\n\r\n${chunk("b")}\r\n\r${chunk("c")}\n\r${USAGE_CHUNK}\r\r\ndata: [DONE]\n\r\n`,
      plain: `${chunk("a", false)}\n\r\n${chunk("b", false)}\r\n\r${chunk("c", false)}\n\rdata: [DONE]\n\r\n`,
    },
  ];
  for (const { asked, plain } of cases) {
    const bytes = encoder.encode(asked);
    for (let a = 0; a <= bytes.length; a += 1) {
      for (let b = a; b <= bytes.length; b += 3) {
        const parts = [bytes.slice(0, a), bytes.slice(a, b), bytes.slice(b)].filter((part) =>
          part.length > 0
        );
        const got = await strip(parts);
        if (got !== plain) assert.equal(got, plain, `cut at ${a} and ${b}`);
      }
    }
  }
});
