import assert from "node:assert/strict";
import { sha256Hex } from "../../src/util/sha256.ts";
import { test } from "../_support/test.ts";

async function native(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

test("sha256: the FIPS 180-4 examples", () => {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

test("sha256: the same digest as WebCrypto at every padding edge, for multi-byte text, and for random text", async () => {
  const texts: string[] = [];
  for (const length of [1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 70_000]) {
    texts.push("x".repeat(length));
  }
  texts.push("é", "日本語のテキスト", "😀 emoji", "é".repeat(28), "\u0000\uffff", "\ud800 lone surrogate");
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 300; i++) {
    let text = "";
    for (let n = Math.floor(random() * 200); n > 0; n--) {
      text += String.fromCharCode(
        random() < 0.8 ? 32 + Math.floor(random() * 95) : Math.floor(random() * 0xffff),
      );
    }
    texts.push(text);
  }
  for (const text of texts) {
    assert.equal(sha256Hex(text), await native(text), JSON.stringify(text.slice(0, 40)));
  }
});

test("sha256: multi-byte text around the reused 4 KiB buffer's bound, and a short text after a long one", async () => {
  // Texts up to 1,362 UTF-16 units (room for 3 bytes each) use the buffer; longer ones get an array of their own.
  const texts: string[] = [];
  for (const length of [1361, 1362, 1363, 1366, 2100]) {
    texts.push("日".repeat(length), "😀".repeat(length >> 1), "\ud800".repeat(length), "é".repeat(length));
    texts.push("a".repeat(length - 1) + "€", "€" + "a".repeat(length - 1));
  }
  for (const text of texts) {
    assert.equal(sha256Hex(text), await native(text), `${text.length} x ${JSON.stringify(text.slice(0, 2))}`);
    assert.equal(
      sha256Hex("abc"),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "after it",
    );
  }
});
