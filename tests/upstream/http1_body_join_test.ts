/**
 * A chunked stream answer read by the HTTP/1.1 client with its guard (secret mask), where one socket read brings
 * many HTTP chunks (their copies joined into one view, `BodyReader.#joined`): a secret cut across HTTP chunks at
 * every place, chunk extensions, CRLF events, a large chunk with a buffer of its own between small ones. What the
 * consumer gets, with every chunk kept until the end, is the body with each secret masked, byte for byte.
 */

import assert from "node:assert/strict";
import { Http1Agent } from "../../src/upstream/http1.ts";
import { AnswerGuard } from "../../src/upstream/answer_guard.ts";
import { SecretMask } from "../../src/upstream/secret_mask.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SECRET = "sk-proj-AbCdEf_123";

/** The body cut into HTTP chunks at `cuts` (byte offsets), each size line with an extension every other chunk. */
function chunked(body: Uint8Array, cuts: number[]): Uint8Array {
  const parts: string[] = [];
  let from = 0;
  for (const [i, to] of [...cuts, body.length].entries()) {
    if (to <= from) continue;
    const piece = body.subarray(from, to);
    parts.push(`${piece.length.toString(16)}${i % 2 ? ";ext=1" : ""}\r\n`, decoder.decode(piece), "\r\n");
    from = to;
  }
  return encoder.encode(`${parts.join("")}0\r\n\r\n`);
}

test("one read of many HTTP chunks: secrets cut anywhere are masked, every byte comes once, in order", {
  timeout: 60_000,
}, async () => {
  const large = "y".repeat(1500); // over the slab's largest copy: a buffer of its own
  const text = `data: {"echo":"Bearer ${SECRET}"}\r\n\r\ndata: ${SECRET}${SECRET}\n\n: ${large}\n\n` +
    `data: {"n":"sk-proj"} ${SECRET}\n\ndata: [DONE]\n\n`;
  const body = encoder.encode(text);
  const expected = text.replaceAll(SECRET, "*".repeat(SECRET.length));
  let answer: Uint8Array = new Uint8Array(0);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buffer = new Uint8Array(8192);
        try {
          while ((await conn.read(buffer)) !== null) {
            const head = encoder.encode(
              "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n" +
                "transfer-encoding: chunked\r\n\r\n",
            );
            // The head, then small events a read each (the connection's buffer shrinks below 1 KiB: a read's
            // first small chunks are copied to the slab with the bytes around them, their copies not end to end),
            // then the rest at once.
            await conn.write(head);
            for (let i = 0; i < 6; i++) {
              await new Promise((resolve) => setTimeout(resolve, 15));
              await conn.write(encoder.encode(`9\r\ndata: ${i}\n\n\r\n`));
            }
            await new Promise((resolve) => setTimeout(resolve, 15));
            for (let at = 0; at < answer.length;) at += await conn.write(answer.subarray(at));
          }
        } catch {
          /* closed */
        } finally {
          conn.close();
        }
      })();
    }
  })().catch(() => {});
  using agent = new Http1Agent();
  try {
    const secretAt = text.indexOf(SECRET, text.indexOf("data: sk"));
    for (let cut = secretAt - 2; cut <= secretAt + SECRET.length + 2; cut++) {
      // Chunks of 1 to 5 bytes first and around the cut, and larger ones elsewhere.
      const cuts = [1, 2, 4, 40, cut - 3, cut, cut + 1, cut + 5, cut + SECRET.length, 400, 2000];
      answer = chunked(body, cuts);
      const response = await agent.fetch(`http://127.0.0.1:${listener.addr.port}/`, {
        method: "POST",
        headers: {},
        body: "{}",
        signal: new AbortController().signal,
        guard: new AnswerGuard(1 << 20, SecretMask.of([SECRET])),
      });
      const kept: Uint8Array[] = [];
      for await (const chunk of response.body!) kept.push(chunk);
      const got = decoder.decode(new Uint8Array(kept.flatMap((chunk) => [...chunk])));
      const first = [0, 1, 2, 3, 4, 5].map((i) => `data: ${i}\n\n`).join("");
      assert.equal(got, first + expected, `cut at ${cut}`);
    }
  } finally {
    listener.close();
    await serving;
  }
});
