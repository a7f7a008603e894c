/** The SSE frames of a Responses API stream, built from a completed response by the simulated upstream. */

import { type Json, splitPieces } from "./content.ts";

/**
 * The typed SSE frames (`event: <type>\ndata: {...}\n\n`) of a completed response, split into `chunks` deltas:
 * created, in_progress, per output item its added / part / delta / done events, then completed.
 */
export function responseStreamFrames(response: Json, chunks: number): string[] {
  const frames: string[] = [];
  let sequence = 0;
  const emit = (type: string, fields: Json) =>
    frames.push(
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`,
    );
  const pending = { ...response, status: "in_progress", completed_at: null, output: [], usage: null };
  emit("response.created", { response: pending });
  emit("response.in_progress", { response: pending });
  const output = response.output as Json[];
  output.forEach((item, outputIndex) => {
    const id = item.id as string;
    if (item.type === "message") {
      const part = (item.content as Json[])[0];
      const text = part.text as string;
      emit("response.output_item.added", {
        output_index: outputIndex,
        item: { ...item, status: "in_progress", content: [] },
      });
      const at = { item_id: id, output_index: outputIndex, content_index: 0 };
      emit("response.content_part.added", { ...at, part: { ...part, text: "" } });
      for (const delta of splitPieces(text, chunks)) {
        emit("response.output_text.delta", { ...at, delta, logprobs: [] });
      }
      emit("response.output_text.done", { ...at, text, logprobs: [] });
      emit("response.content_part.done", { ...at, part });
    } else if (item.type === "function_call") {
      emit("response.output_item.added", {
        output_index: outputIndex,
        item: { ...item, status: "in_progress", arguments: "" },
      });
      const at = { item_id: id, output_index: outputIndex };
      for (const delta of splitPieces(item.arguments as string, chunks)) {
        emit("response.function_call_arguments.delta", { ...at, delta });
      }
      emit("response.function_call_arguments.done", { ...at, arguments: item.arguments });
    } else {
      emit("response.output_item.added", { output_index: outputIndex, item });
    }
    emit("response.output_item.done", { output_index: outputIndex, item });
  });
  emit("response.completed", { response });
  return frames;
}
