/**
 * Audio answers of the simulated upstream: a transcription or translation that says what it heard (the file's name
 * and size), as JSON, text or an SSE stream of `transcript.text.*` events; and speech as binary audio written in
 * pieces, one per stream chunk, so a proxy that buffers it whole is seen to.
 */

import {
  errorBody,
  type Json,
  missingParameter,
  Rejection,
  type SimContext,
  splitPieces,
} from "./content.ts";
import type { SimForm } from "./form.ts";

const AUDIO_TYPES: Readonly<Record<string, string>> = {
  mp3: "audio/mpeg",
  opus: "audio/opus",
  aac: "audio/aac",
  flac: "audio/flac",
  wav: "audio/wav",
  pcm: "audio/pcm",
};

/** Bytes of each piece of speech. */
export const SPEECH_PIECE_BYTES = 4096;

export type Transcript =
  | { readonly kind: "json"; readonly value: Json }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "sse"; readonly frames: string[] };

/** What `transcriptions` (or `translations`) answers for the form. */
export function transcribe(form: SimForm, model: string, ctx: SimContext, translate: boolean): Transcript {
  const file = form.files.find((f) => f.field === "file");
  if (!file) throw missingParameter("file");
  if (!model) throw missingParameter("model");
  const verb = translate ? "translated" : "heard";
  const text = `[${ctx.name}] ${verb} ${file.bytes} bytes of ${file.filename}`;
  const format = form.fields.response_format ?? "json";
  const usage = transcriptUsage(model, file.bytes, text);
  if (form.fields.stream === "true" && !translate) {
    const frame = (event: Json) => `data: ${JSON.stringify(event)}\n\n`;
    const deltas = splitPieces(text, ctx.chunks).map((delta) =>
      frame({ type: "transcript.text.delta", delta })
    );
    return { kind: "sse", frames: [...deltas, frame({ type: "transcript.text.done", text, usage })] };
  }
  if (format === "text") return { kind: "text", text };
  if (format === "srt" || format === "vtt") {
    const head = format === "vtt" ? "WEBVTT\n\n" : "1\n";
    return { kind: "text", text: `${head}00:00:00.000 --> 00:00:01.000\n${text}\n` };
  }
  if (format === "verbose_json") {
    return {
      kind: "json",
      value: {
        task: translate ? "translate" : "transcribe",
        language: "english",
        duration: 1,
        text,
        segments: [],
      },
    };
  }
  return { kind: "json", value: { text, usage } };
}

/**
 * The usage a transcription reports: tokens for the GPT-4o transcribe models (`gpt-...`: one audio token per 1000
 * bytes, one output token per 4 characters), the audio's duration for `whisper-1` and the rest.
 */
function transcriptUsage(model: string, bytes: number, text: string): Json {
  if (!model.startsWith("gpt-")) return { type: "duration", seconds: 1 };
  const audio = Math.max(1, Math.ceil(bytes / 1000));
  const output = Math.ceil(text.length / 4);
  return {
    type: "tokens",
    input_tokens: audio + 1,
    input_token_details: { text_tokens: 1, audio_tokens: audio },
    output_tokens: output,
    total_tokens: audio + 1 + output,
  };
}

/** Speech: `chunks` pieces of audio-looking bytes and their content type. */
export function speech(body: Json, model: string, ctx: SimContext): { pieces: string[]; type: string } {
  if (!model) throw missingParameter("model");
  if (typeof body.input !== "string" || body.input === "") throw missingParameter("input");
  const format = typeof body.response_format === "string" ? body.response_format : "mp3";
  const type = AUDIO_TYPES[format];
  if (!type) {
    throw new Rejection(
      400,
      errorBody(`Unsupported response_format '${format}'`, "invalid_request_error", null, "response_format"),
    );
  }
  const pieces: string[] = [];
  for (let i = 0; i < ctx.chunks; i++) {
    const head = i === 0 ? `SIMAUDIO ${ctx.name} ${format} ${body.input.length}\n` : "";
    pieces.push(head + String.fromCharCode(97 + (i % 26)).repeat(SPEECH_PIECE_BYTES - head.length));
  }
  return { pieces, type };
}
