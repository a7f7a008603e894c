/**
 * What the simulated upstream says: the echo text built from a request, its split into stream pieces, JSON that
 * fits a requested schema, token estimates and the OpenAI error envelope. Pure functions, no I/O.
 */

/** Per-request facts the answer builders need from the server. */
export interface SimContext {
  /** The sim's name, shown in every answer (`[east] echo: hello`). */
  readonly name: string;
  /** A fresh id with the sim's name in it, e.g. `resp_east_1a2b_7`. */
  readonly id: (prefix: string) => string;
  /** Number of content pieces a stream is split into. */
  readonly chunks: number;
  /** Byte length of the request body, for the usage estimate. */
  readonly bodyLength: number;
}

export type Json = Record<string, unknown>;

const ECHO_LIMIT = 80;

export const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The text of a message `content`: a string, or an array of parts with `text` (chat and Responses shapes). */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let text = "";
  for (const part of content) {
    if (isObject(part) && typeof part.text === "string") text += (text ? " " : "") + part.text;
  }
  return text;
}

/** Shortens user text so answers stay small whatever was sent. */
export function brief(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= ECHO_LIMIT) return flat;
  const points = Array.from(flat);
  return points.length <= ECHO_LIMIT ? flat : points.slice(0, ECHO_LIMIT - 3).join("") + "...";
}

export const echoText = (name: string, userText: string) => `[${name}] echo: ${brief(userText)}`;
export const toolResultText = (name: string, output: string) => `[${name}] tool said: ${brief(output)}`;

/**
 * Splits `text` into exactly `count` non-empty pieces that join back to it; a text shorter than `count` is padded
 * with `pad` first (a space keeps JSON valid).
 */
export function splitPieces(text: string, count: number, pad = "."): string[] {
  const n = Math.max(1, Math.floor(count));
  const points = Array.from(text);
  while (points.length < n) points.push(pad);
  const pieces: string[] = [];
  const size = Math.floor(points.length / n);
  let extra = points.length % n;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const len = size + (extra-- > 0 ? 1 : 0);
    pieces.push(points.slice(at, at + len).join(""));
    at += len;
  }
  return pieces;
}

/** Rough token counts: about four characters a token, never zero. */
export const tokens = (chars: number) => Math.max(1, Math.ceil(chars / 4));

/**
 * A value that satisfies a (JSON Schema) `schema` closely enough for structured outputs and tool arguments:
 * objects get every property, strings get `text`, enums their first member. `$ref` into `$defs` is followed.
 */
export function sampleFromSchema(schema: unknown, text: string, root: unknown = schema, depth = 0): unknown {
  if (!isObject(schema) || depth > 12) return text;
  if (typeof schema.$ref === "string") {
    const target = schema.$ref.startsWith("#/") ? lookup(root, schema.$ref.slice(2).split("/")) : undefined;
    return target === undefined ? text : sampleFromSchema(target, text, root, depth + 1);
  }
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const choices = schema.anyOf ?? schema.oneOf ?? schema.allOf;
  if (Array.isArray(choices) && choices.length > 0) {
    const chosen = choices.find((c) => !(isObject(c) && c.type === "null")) ?? choices[0];
    return sampleFromSchema(chosen, text, root, depth + 1);
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type ?? (isObject(schema.properties) ? "object" : "string")) {
    case "object": {
      const out: Json = {};
      if (isObject(schema.properties)) {
        for (const [key, sub] of Object.entries(schema.properties)) {
          out[key] = sampleFromSchema(sub, text, root, depth + 1);
        }
      }
      return out;
    }
    case "array":
      return [sampleFromSchema(schema.items, text, root, depth + 1)];
    case "integer":
    case "number":
      return typeof schema.minimum === "number" ? schema.minimum : 1;
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      return text;
  }
}

function lookup(root: unknown, path: string[]): unknown {
  let node = root;
  for (const key of path) {
    if (!isObject(node)) return undefined;
    node = node[key];
  }
  return node;
}

/** The OpenAI error envelope. */
export function errorBody(message: string, type: string, code: string | null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

/** A plausible OpenAI error body for a status, used when a `status` behaviour gives none. */
export function defaultErrorBody(status: number, name: string) {
  const who = `simulated upstream '${name}'`;
  switch (status) {
    case 400:
      return errorBody(`Bad request (${who})`, "invalid_request_error", "invalid_request");
    case 401:
      return errorBody(`Incorrect API key provided (${who})`, "invalid_request_error", "invalid_api_key");
    case 403:
      return errorBody(`Forbidden (${who})`, "permission_error", "forbidden");
    case 404:
      return errorBody(
        `The model or deployment does not exist (${who})`,
        "invalid_request_error",
        "model_not_found",
      );
    case 408:
      return errorBody(`Request timed out (${who})`, "timeout", "timeout");
    case 429:
      return errorBody(`Rate limit reached (${who})`, "requests", "rate_limit_exceeded");
    default:
      return status >= 500
        ? errorBody(
          `The server had an error while processing your request (${who})`,
          "server_error",
          "server_error",
        )
        : errorBody(`Request failed with status ${status} (${who})`, "invalid_request_error", null);
  }
}

/** Thrown by an answer builder to reply with an error status and an OpenAI error body instead. */
export class Rejection extends Error {
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, body: { error: { message: string } }) {
    super(body.error.message);
    this.name = "Rejection";
    this.status = status;
    this.body = body;
  }
}

/** The 400 OpenAI answers when a required parameter is absent. */
export function missingParameter(param: string): Rejection {
  return new Rejection(
    400,
    errorBody(
      `Missing required parameter: '${param}'.`,
      "invalid_request_error",
      "missing_required_parameter",
      param,
    ),
  );
}
