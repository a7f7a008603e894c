import assert from "node:assert/strict";
import {
  exhaustedUntil,
  parseDuration,
  parseRateLimitHeaders,
  parseRetryAfter,
} from "../../src/ratelimit/headers.ts";
import { test } from "../_support/test.ts";

test("parseDuration reads Go-style durations and bare seconds", () => {
  const table: [string | null, number | undefined][] = [
    ["1s", 1000],
    ["6m0s", 360_000],
    ["12ms", 12],
    ["59.5s", 59_500],
    ["1h2m3s", 3_723_000],
    ["2", 2000],
    ["0.5", 500],
    ["0s", 0],
    ["", undefined],
    [null, undefined],
    ["abc", undefined],
    ["1x", undefined],
    ["-1s", undefined],
    ["1s garbage", undefined],
    ["s", undefined],
  ];
  for (const [input, expected] of table) assert.equal(parseDuration(input), expected, `input ${input}`);
});

test("parseRetryAfter prefers milliseconds headers, then seconds, then an HTTP date", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const table: [Record<string, string>, number | undefined][] = [
    [{ "retry-after-ms": "1500" }, 1500],
    [{ "x-ms-retry-after-ms": "250" }, 250],
    [{ "retry-after": "3" }, 3000],
    [{ "retry-after": "1.5" }, 1500],
    [{ "retry-after": "Thu, 01 Jan 2026 00:00:10 GMT" }, 10_000],
    [{ "retry-after": "Wed, 31 Dec 2025 23:59:00 GMT" }, 0],
    [{ "retry-after-ms": "soon", "retry-after": "2" }, 2000],
    [{ "retry-after": "-5" }, undefined],
    [{ "retry-after": "later" }, undefined],
    [{}, undefined],
  ];
  for (const [headers, expected] of table) {
    assert.equal(parseRetryAfter(new Headers(headers), now), expected, JSON.stringify(headers));
  }
});

test("parseRateLimitHeaders reads OpenAI headers and ignores Azure's -1 and junk", () => {
  const now = 1_000_000;
  const openai = parseRateLimitHeaders(
    new Headers({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-limit-tokens": "150000",
      "x-ratelimit-remaining-tokens": "149000",
      "x-ratelimit-reset-tokens": "6m0s",
    }),
    now,
  );
  assert.deepEqual(openai, {
    limitRequests: 60,
    remainingRequests: 0,
    resetRequestsAt: now + 1000,
    limitTokens: 150000,
    remainingTokens: 149000,
    resetTokensAt: now + 360_000,
  });
  assert.equal(exhaustedUntil(openai), now + 1000);

  const azure = parseRateLimitHeaders(
    new Headers({ "x-ratelimit-remaining-requests": "-1", "x-ratelimit-remaining-tokens": "-1" }),
    now,
  );
  assert.deepEqual(azure, {});
  assert.equal(exhaustedUntil(azure), undefined);

  const junk = parseRateLimitHeaders(
    new Headers({ "x-ratelimit-remaining-requests": "lots", "x-ratelimit-reset-requests": "whenever" }),
    now,
  );
  assert.deepEqual(junk, {});
});

test("exhaustedUntil needs both zero remaining and a known reset", () => {
  assert.equal(exhaustedUntil({ remainingRequests: 0 }), undefined);
  assert.equal(exhaustedUntil({ remainingRequests: 5, resetRequestsAt: 10 }), undefined);
  assert.equal(
    exhaustedUntil({ remainingTokens: 0, resetTokensAt: 50, remainingRequests: 0, resetRequestsAt: 20 }),
    50,
  );
});
