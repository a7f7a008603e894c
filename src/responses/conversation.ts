/**
 * Pure helpers for Responses API conversations: which endpoint-bound blobs a request carries, and how to rebuild
 * a conversation as explicit input for an endpoint that never saw it.
 */

export type Item = Record<string, unknown>;

const isItem = (value: unknown): value is Item =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The request's `input` as a list of items (a bare string is one user message). */
export function inputItems(input: unknown): Item[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  if (Array.isArray(input)) return input.filter(isItem);
  return [];
}

/** The `encrypted_content` blobs of reasoning items in a list of items. */
export function encryptedBlobs(items: readonly unknown[]): string[] {
  const blobs: string[] = [];
  for (const item of items) {
    if (isItem(item) && item.type === "reasoning" && typeof item.encrypted_content === "string") {
      blobs.push(item.encrypted_content);
    }
  }
  return blobs;
}

/** Item types that only the endpoint that produced them can read, or that point at its server-side state. */
const ENDPOINT_BOUND = new Set(["reasoning", "item_reference", "compaction"]);

/** Output item types that make sense as input elsewhere; the rest (server-side tool calls) are dropped. */
const PORTABLE_OUTPUT = new Set(["message", "function_call", "custom_tool_call"]);

/** Strips what ties an item to its endpoint: stored ids and statuses. */
function portable(item: Item): Item {
  const { id: _id, status: _status, ...rest } = item;
  return rest;
}

/** An item a client sent, made safe for another endpoint; undefined when only the owner could read it. */
export function portableInput(item: Item): Item | undefined {
  if (typeof item.type === "string" && ENDPOINT_BOUND.has(item.type)) return undefined;
  return portable(item);
}

/** An output item of a response, as input for another endpoint; undefined when it cannot travel. */
export function portableOutput(item: Item): Item | undefined {
  if (typeof item.type !== "string" || !PORTABLE_OUTPUT.has(item.type)) return undefined;
  if (item.type === "message") {
    const content = Array.isArray(item.content)
      ? item.content.filter((part) =>
        isItem(part) && (part.type === "output_text" || part.type === "refusal")
      )
        .map((part) => {
          const { annotations: _annotations, logprobs: _logprobs, ...rest } = part as Item;
          return rest;
        })
      : [];
    return { type: "message", role: "assistant", content };
  }
  return portable(item);
}

/** One turn as the proxy keeps it: what was sent and what came back. */
export interface Turn {
  readonly endpoint: string;
  /** The previous response in the chain, if any. */
  readonly previous?: string;
  readonly input: readonly Item[];
  readonly output: readonly Item[];
}

/** Flattens turns (oldest first) into explicit input for another endpoint. */
export function replayInput(turns: readonly Turn[], current: readonly Item[]): Item[] {
  const items: Item[] = [];
  for (const turn of turns) {
    for (const item of turn.input) {
      const kept = portableInput(item);
      if (kept) items.push(kept);
    }
    for (const item of turn.output) {
      const kept = portableOutput(item);
      if (kept) items.push(kept);
    }
  }
  for (const item of current) {
    const kept = portableInput(item);
    if (kept) items.push(kept);
  }
  return items;
}
