/**
 * Image and moderation answers of the simulated upstream: `images.generate` and `images.edit` give `n` tiny PNGs
 * (or URLs), moderations flag any input that contains "flag-me".
 */

import { type Json, missingParameter, type SimContext } from "./content.ts";
import type { SimForm } from "./form.ts";

/** A 1x1 transparent PNG. */
const PIXEL =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/** The answer to an image generation (JSON body) or edit (a form: `image` files and text fields). */
export function images(request: Json | SimForm, model: string, ctx: SimContext): Json {
  const form = "files" in request && "fields" in request ? request as SimForm : undefined;
  const fields: Json = form ? form.fields : request as Json;
  const prompt = fields.prompt;
  if (typeof prompt !== "string" || prompt === "") throw missingParameter("prompt");
  if (form && !form.files.some((file) => file.field === "image" || file.field === "image[]")) {
    throw missingParameter("image");
  }
  const n = Math.min(10, Math.max(1, Number(fields.n ?? 1) || 1));
  const url = fields.response_format === "url";
  const data = Array.from(
    { length: n },
    (_, i) =>
      url ? { url: `https://sim.invalid/${ctx.name}/${ctx.id("img")}.png`, revised_prompt: prompt } : {
        b64_json: PIXEL,
        revised_prompt: `[${ctx.name}] ${model} image ${i + 1}: ${prompt.slice(0, 80)}`,
      },
  );
  return {
    created: Math.floor(Date.now() / 1000),
    data,
    usage: {
      input_tokens: 1,
      output_tokens: n,
      total_tokens: 1 + n,
      input_tokens_details: { image_tokens: 0, text_tokens: 1 },
    },
  };
}

const CATEGORIES = [
  "harassment",
  "harassment/threatening",
  "hate",
  "hate/threatening",
  "illicit",
  "illicit/violent",
  "self-harm",
  "self-harm/instructions",
  "self-harm/intent",
  "sexual",
  "sexual/minors",
  "violence",
  "violence/graphic",
];

/** One result per input text; an input containing "flag-me" is flagged for violence. */
export function moderation(body: Json, ctx: SimContext): Json {
  const input = body.input;
  const texts = typeof input === "string"
    ? [input]
    : Array.isArray(input)
    ? input.map((item) => typeof item === "string" ? item : JSON.stringify(item))
    : undefined;
  if (!texts) throw missingParameter("input");
  const results = texts.map((text) => {
    const flagged = text.includes("flag-me");
    const score = (category: string) => flagged && category === "violence";
    return {
      flagged,
      categories: Object.fromEntries(CATEGORIES.map((c) => [c, score(c)])),
      category_scores: Object.fromEntries(CATEGORIES.map((c) => [c, score(c) ? 0.99 : 0.0001])),
      category_applied_input_types: Object.fromEntries(CATEGORIES.map((c) => [c, ["text"]])),
    };
  });
  return {
    id: ctx.id("modr"),
    model: typeof body.model === "string" ? body.model : "omni-moderation-latest",
    results,
  };
}
