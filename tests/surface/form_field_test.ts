import assert from "node:assert/strict";
import type { ProxyError } from "../../src/errors.ts";
import { boundaryOf } from "../../src/multipart/scanner.ts";
import { replacedField } from "../../src/surface/form_field.ts";
import { test } from "../_support/test.ts";

const decoder = new TextDecoder();

/** The bytes and boundary a real FormData serializes to. */
async function encode(entries: [string, string | File][]): Promise<{ bytes: Uint8Array; boundary: string }> {
  const form = new FormData();
  for (const [name, value] of entries) form.append(name, value);
  const response = new Response(form);
  return { bytes: await response.bytes(), boundary: boundaryOf(response.headers.get("content-type"))! };
}

/** Content that looks like the start of a delimiter, so a split anywhere in it tests the scanner's carry. */
const audio = () => new File(["RIFF\r\n--not-the-boundary\r\n\r\n-\r\r\n" + "x".repeat(300)], "a.wav");

/**
 * `bytes` in pieces of `size`, each written into the same buffer before it is handed over (as the upload's reader
 * does); the output is copied piece by piece as it comes, as the upstream writer sends it.
 */
async function replaced(bytes: Uint8Array, boundary: string, size: number, value = "gpt-4o-transcribe") {
  const shared = new Uint8Array(size);
  const handed: Uint8Array[] = [];
  async function* pieces() {
    for (let at = 0; at < bytes.length; at += size) {
      const piece = bytes.subarray(at, at + size);
      shared.set(piece);
      const view = shared.subarray(0, piece.length);
      handed.push(view);
      yield view;
    }
  }
  const out: Uint8Array[] = [];
  let passed = 0;
  for await (const chunk of replacedField(pieces(), boundary, "model", value)) {
    if (handed.includes(chunk)) passed++;
    out.push(chunk.slice());
  }
  return { text: decoder.decode(new Uint8Array(out.flatMap((chunk) => [...chunk]))), passed };
}

test("the form's model is replaced at every split, even through a buffer reused for every chunk", async () => {
  for (const order of ["model first", "file first"]) {
    const model: [string, string] = ["model", "whisper-1"];
    const file: [string, File] = ["file", audio()];
    const entries: [string, string | File][] = order === "model first"
      ? [["purpose", "x"], model, file]
      : [file, model, ["language", "en"]];
    const { bytes, boundary } = await encode(entries);
    const expected = decoder.decode(bytes).replace("\r\n\r\nwhisper-1\r\n", "\r\n\r\ngpt-4o-transcribe\r\n");
    assert.notEqual(expected, decoder.decode(bytes));
    for (let size = 1; size <= bytes.length; size += size < 80 ? 1 : 37) {
      const { text } = await replaced(bytes, boundary, size);
      assert.equal(text, expected, `${order}, pieces of ${size}`);
    }
  }
});

test("after the field, chunks pass as they are: not copied", async () => {
  const { bytes, boundary } = await encode([["model", "whisper-1"], ["file", audio()]]);
  const { text, passed } = await replaced(bytes, boundary, 16);
  assert.ok(text.includes("gpt-4o-transcribe"));
  // The file's bytes (over 300) came through untouched, in the reader's own chunks of 16.
  assert.ok(passed >= 300 / 16, `only ${passed} chunks passed through as they were`);
});

test("only a text field is replaced; a second one, or a file part of the name, is refused; a form without one passes unchanged", async () => {
  // A second field after a file, at every split (a delimiter or head across two chunks is still seen).
  const twice = await encode([["model", "a"], ["file", audio()], ["model", "b"]]);
  for (let size = 1; size <= twice.bytes.length; size += size < 80 ? 1 : 13) {
    await assert.rejects(
      replaced(twice.bytes, twice.boundary, size, "z"),
      (error: ProxyError) => error.status === 400 && error.param === "model",
      `pieces of ${size}`,
    );
  }
  // A file part of the name is refused wherever it comes: an upstream may read it as the field.
  for (const fields of [[["model", "a"]], []] as [string, string][][]) {
    const filePart = await encode([...fields, ["model", new File(["whisper-1"], "model.txt")], [
      "file",
      audio(),
    ]]);
    await assert.rejects(
      replaced(filePart.bytes, filePart.boundary, 5),
      (error: ProxyError) =>
        error.status === 400 && error.param === "model" && /file part/.test(error.message),
    );
  }
  const none = await encode([["purpose", "x"], ["file", audio()]]);
  assert.equal((await replaced(none.bytes, none.boundary, 3)).text, decoder.decode(none.bytes));
});
