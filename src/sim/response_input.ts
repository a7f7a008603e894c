/**
 * The input of a Responses API request as the simulated upstream reads it: explicit items, the last user text and
 * the first function tool.
 */

import { brief, contentText, isObject, type Json, type SimContext } from "./content.ts";

/** The input as explicit items with ids, the way `GET /responses/{id}/input_items` lists them. */
export function normalizeInput(input: unknown, ctx: SimContext): Json[] {
  if (typeof input === "string") {
    return [{
      id: ctx.id("msg"),
      type: "message",
      role: "user",
      status: "completed",
      content: [{ type: "input_text", text: input }],
    }];
  }
  if (!Array.isArray(input)) return [];
  return input.filter(isObject).map((raw) => {
    const item: Json = { ...raw };
    if (item.type === undefined && typeof item.role === "string") item.type = "message";
    if (item.type === "message") {
      if (typeof item.content === "string") {
        const partType = item.role === "assistant" ? "output_text" : "input_text";
        item.content = [{ type: partType, text: item.content }];
      }
      item.status ??= "completed";
    }
    item.id ??= ctx.id(item.type === "message" ? "msg" : "item");
    return item;
  });
}

export function lastUserText(input: Json[]): string {
  for (let i = input.length - 1; i >= 0; i--) {
    const item = input[i];
    if (item.type === "message" && item.role === "user") return brief(contentText(item.content));
  }
  return "";
}

export function firstFunction(tools: unknown): { name: string; parameters: unknown } | undefined {
  if (!Array.isArray(tools)) return undefined;
  for (const tool of tools) {
    if (isObject(tool) && tool.type === "function" && typeof tool.name === "string") {
      return { name: tool.name, parameters: tool.parameters };
    }
  }
  return undefined;
}
