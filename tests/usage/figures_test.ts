import assert from "node:assert/strict";
import { usageOf } from "../../src/usage/figures.ts";
import { test } from "../_support/test.ts";

test("usageOf reads chat, images, transcriptions and realtime responses in one shape", () => {
  const chat = {
    model: "gpt-4o-2024-08-06",
    usage: {
      prompt_tokens: 10,
      completion_tokens: 5,
      prompt_tokens_details: { cached_tokens: 4 },
      completion_tokens_details: { reasoning_tokens: 2 },
    },
  };
  assert.deepEqual(usageOf(chat), {
    input: 10,
    cachedInput: 4,
    output: 5,
    reasoning: 2,
    model: "gpt-4o-2024-08-06",
  });
  const image = {
    usage: { input_tokens: 7, output_tokens: 3, total_tokens: 10, input_tokens_details: { text_tokens: 7 } },
  };
  assert.deepEqual(usageOf(image), { input: 7, cachedInput: 0, output: 3, reasoning: 0 });
  const transcription = {
    text: "hi",
    usage: { type: "tokens", input_tokens: 6, output_tokens: 1, total_tokens: 7 },
  };
  assert.deepEqual(usageOf(transcription), { input: 6, cachedInput: 0, output: 1, reasoning: 0 });
  // whisper-1 reports seconds: no tokens.
  assert.equal(usageOf({ text: "hi", usage: { type: "duration", seconds: 3 } }), undefined);
  // A realtime response.done: the usage is the response's, its details named `input_token_details`.
  const done = {
    type: "response.done",
    response: { usage: { input_tokens: 10, output_tokens: 4, input_token_details: { cached_tokens: 6 } } },
  };
  assert.deepEqual(usageOf(done), { input: 10, cachedInput: 6, output: 4, reasoning: 0 });
});
