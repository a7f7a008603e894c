import assert from "node:assert/strict";
import { ProxyError } from "../../src/errors.ts";
import { boundaryOf, type MultipartEvent, MultipartScanner } from "../../src/multipart/scanner.ts";
import { test } from "../_support/test.ts";

/** The bytes and content type a real FormData serializes to. */
async function encode(form: FormData): Promise<{ bytes: Uint8Array; type: string }> {
  const response = new Response(form);
  return { bytes: await response.bytes(), type: response.headers.get("content-type")! };
}

function sample(): FormData {
  const form = new FormData();
  form.append("purpose", "batch");
  // Content that looks like the start of a delimiter, split across chunks in every way.
  const content = new TextEncoder().encode("line 1\r\n--not-the-boundary\r\n\r\n-\r\r\n" + "x".repeat(300));
  form.append("file", new File([content], 'a "quoted".jsonl', { type: "application/jsonl" }));
  form.append("model", "whisper");
  return form;
}

/** Scans `bytes` in pieces of `size`; returns the events (data copied) and the joined raw bytes. */
function scan(bytes: Uint8Array, boundary: string, size: number) {
  const scanner = new MultipartScanner(boundary);
  const events: MultipartEvent[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    for (const event of scanner.push(bytes.slice(at, at + size))) {
      events.push({ ...event, raw: event.raw.slice() });
    }
  }
  events.push(...scanner.finish());
  const joined = new Uint8Array(events.reduce((n, e) => n + e.raw.length, 0));
  let offset = 0;
  for (const event of events) {
    joined.set(event.raw, offset);
    offset += event.raw.length;
  }
  return { events, joined };
}

/** Each part's name, file name and content as text. */
function parts(events: MultipartEvent[]) {
  const out: { name: string; filename: string | null; text: string }[] = [];
  for (const event of events) {
    if (event.kind === "part") out.push({ name: event.name, filename: event.filename, text: "" });
    else if (event.kind === "data") out.at(-1)!.text += new TextDecoder().decode(event.raw);
  }
  return out;
}

test("boundaryOf reads quoted and bare boundaries and refuses other types", () => {
  assert.equal(boundaryOf("multipart/form-data; boundary=abc"), "abc");
  assert.equal(boundaryOf('Multipart/Form-Data; charset=utf-8; boundary="a b"'), "a b");
  assert.equal(boundaryOf("application/json"), null);
  assert.equal(boundaryOf("multipart/form-data"), null);
  assert.equal(boundaryOf(null), null);
});

test("every chunking gives the same parts and joins back to the input byte for byte", async () => {
  const { bytes, type } = await encode(sample());
  const boundary = boundaryOf(type)!;
  const expected = parts(scan(bytes, boundary, bytes.length).events);
  assert.deepEqual(expected.map((p) => [p.name, p.filename]), [
    ["purpose", null],
    ["file", "a %22quoted%22.jsonl"],
    ["model", null],
  ]);
  assert.equal(expected[0].text, "batch");
  assert.ok(expected[1].text.startsWith("line 1\r\n--not-the-boundary\r\n\r\n-\r\r\n"));
  assert.equal(expected[2].text, "whisper");
  for (const size of [1, 2, 3, 5, 7, 13, 64, 127]) {
    const { events, joined } = scan(bytes, boundary, size);
    assert.deepEqual(joined, bytes, `chunks of ${size}`);
    assert.deepEqual(parts(events), expected, `chunks of ${size}`);
  }
});

test("a preamble and an epilogue are kept as other bytes", () => {
  const text = "preamble\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--\r\nepilogue";
  const bytes = new TextEncoder().encode(text);
  const { events, joined } = scan(bytes, "b", 4);
  assert.deepEqual(joined, bytes);
  assert.deepEqual(parts(events), [{ name: "x", filename: null, text: "1" }]);
  assert.equal(new TextDecoder().decode(events[0].raw).startsWith("pre"), true);
});

test("malformed bodies are 400s: no closing boundary, no name, an endless head", () => {
  const cut = new TextEncoder().encode("--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1");
  assert.throws(() => scan(cut, "b", 10), (e) => e instanceof ProxyError && e.status === 400);
  const nameless = new TextEncoder().encode("--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--");
  assert.throws(() => scan(nameless, "b", 10), /no name/);
  const endless = new TextEncoder().encode("--b\r\nX: " + "y".repeat(20_000));
  assert.throws(() => scan(endless, "b", 1000), /too long/);
});

test("part contents full of near-delimiters, pushed through one reused buffer in pieces of every size", () => {
  // A fixed-seed generator: the same forms every run.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const decoder = new TextDecoder();
  for (let round = 0; round < 600; round++) {
    const boundary = `b${round}x${"q".repeat(round % 40)}`;
    const delimiter = `\r\n--${boundary}`;
    const contents: string[] = [];
    while (contents.length < 1 + round % 3) {
      let content = "";
      for (let i = random() * 300; i > 0; i--) {
        // Prefixes of the delimiter, lone CRs and LFs, dashes: what a search might take for one.
        content += random() < 0.1 ? delimiter.slice(0, Math.floor(random() * delimiter.length)) : "\r\n-bx"[
          Math.floor(random() * 5)
        ] ?? "y";
      }
      // A content whose end and the delimiter after it would read as a delimiter sooner is no content.
      if ((content + delimiter).indexOf(delimiter) === content.length) contents.push(content);
    }
    const text = contents.map((content, i) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"; filename="a"\r\n\r\n${content}\r\n`
    ).join("") + `--${boundary}--\r\n`;
    const bytes = new TextEncoder().encode(text);
    const size = 1 + Math.floor(random() * (round % 2 ? 40 : 150));
    const shared = new Uint8Array(size);
    const scanner = new MultipartScanner(boundary);
    const events: MultipartEvent[] = [];
    let joined = "";
    const seen: string[] = [];
    for (let at = 0; at < bytes.length; at += size) {
      const piece = bytes.subarray(at, at + size);
      shared.set(piece);
      for (const event of scanner.push(shared.subarray(0, piece.length))) {
        joined += decoder.decode(event.raw);
        if (event.kind === "part") {
          seen.push("");
        } else if (event.kind === "data") {
          seen[seen.length - 1] += decoder.decode(event.raw);
        }
        events.push(event);
      }
    }
    for (const event of scanner.finish()) {
      joined += decoder.decode(event.raw);
    }
    assert.equal(joined, text, `round ${round}: every byte given back, in order`);
    assert.deepEqual(seen, contents, `round ${round}, pieces of ${size}`);
  }
});
