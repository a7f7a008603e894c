/**
 * The masking of credentials in upstream answers, against a plain string replacement: every occurrence of every
 * secret becomes stars, wherever it sits and however the answer is cut into chunks.
 */

import assert from "node:assert/strict";
import { AnswerGuard } from "../../src/upstream/answer_guard.ts";
import { SecretMask } from "../../src/upstream/secret_mask.ts";
import { test } from "../_support/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What masking must produce: each secret (longest first) replaced by a star per byte, left to right. */
function expected(text: string, secrets: string[]): string {
  for (const secret of [...new Set(secrets)].sort((a, b) => b.length - a.length)) {
    text = text.replaceAll(secret, "*".repeat(encoder.encode(secret).length));
  }
  return text;
}

function masked(mask: SecretMask, text: string): string {
  const bytes = encoder.encode(text);
  mask.bytes(bytes);
  return decoder.decode(bytes);
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

test("secrets are masked wherever they sit: start, end, back to back, inside other text, longest first", () => {
  const secrets = ["sk-bench-upstream", "sk-bench", "AbCdEfGh12345678"];
  const mask = SecretMask.of(secrets)!;
  const texts = [
    "sk-bench-upstream",
    'data: {"key":"sk-bench-upstream"}\n\n',
    "sk-bench-upstreamsk-bench-upstream",
    "xsk-benchx sk-bench-upstreax sk-bench-upstream",
    "AbCdEfGh12345678AbCdEfGh1234567",
    "s sk sk- sk-b sk-be sk-ben sk-benc",
    "",
  ];
  for (const text of texts) assert.equal(masked(mask, text), expected(text, secrets), JSON.stringify(text));
  assert.equal(SecretMask.of(["short"]), undefined, "values under 8 characters are not secrets");
});

test("masking agrees with a plain replacement on random texts built from pieces of the secrets", () => {
  const next = random(22);
  const pieces = ["sk-", "proj", "-", "Ab9_", "x", " ", '"', "\n", "é", "sk-proj-Ab9_", "Ab9_Ab9_"];
  for (let round = 0; round < 400; round++) {
    const secrets = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
      let secret = "";
      while (secret.length < 8) secret += pieces[Math.floor(next() * pieces.length)];
      return secret;
    });
    let text = "";
    const parts = Math.floor(next() * 30);
    for (let i = 0; i < parts; i++) {
      text += next() < 0.2
        ? secrets[Math.floor(next() * secrets.length)]
        : pieces[Math.floor(next() * pieces.length)];
    }
    const mask = SecretMask.of(secrets)!;
    assert.equal(masked(mask, text), expected(text, secrets), JSON.stringify({ secrets, text }));
  }
});

test("secrets of every length are found by their shift table: repeated bytes, multi-byte, longer than 255 bytes", () => {
  const long = "sk-" + "ab0_".repeat(80); // 323 bytes: its shifts are capped at 255
  const secrets = [long, "aaaaaaaab", "ééééé-key", "xyxyxyxyxz"];
  const mask = SecretMask.of(secrets)!;
  const texts = [
    `{"echo":"${long}"} ${long.slice(0, -1)} ${long}${long}`,
    "aaaaaaaaaaaaaaaab aaaaaaaabaaaaaaaab aaaaaaaa",
    "éééééé-keyéééé-key ééééé-ke",
    "xyxyxyxyxyxyxyxzxyxyxyxyxz",
    long.slice(1) + long.slice(0, 200) + long + "a".repeat(300),
  ];
  for (const text of texts) assert.equal(masked(mask, text), expected(text, secrets), JSON.stringify(text));
});

test("a secret cut across chunks is masked: the guard holds back a possible start until the next chunk", () => {
  const secret = "sk-proj-AbCdEf_123";
  const text = `data: {"echo":"Bearer ${secret}","n":"sk-proj"}\n\ndata: ${secret}${secret}\n\n`;
  const bytes = encoder.encode(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    for (const second of [cut, Math.min(bytes.length, cut + 7)]) {
      const guard = new AnswerGuard(1 << 20, SecretMask.of([secret]));
      const out: Uint8Array[] = [];
      for (const [from, to] of [[0, cut], [cut, second], [second, bytes.length]]) {
        const passed = guard.chunk(bytes.slice(from, to));
        if (passed) out.push(passed.slice());
      }
      const held = guard.end();
      if (held) out.push(held);
      const joined = decoder.decode(new Uint8Array(out.flatMap((chunk) => [...chunk])));
      assert.equal(joined, expected(text, [secret]), `cut at ${cut} and ${second}`);
    }
  }
});
