/**
 * Files of the simulated upstream: uploaded with `POST /files` (multipart), listed, retrieved, read back and
 * deleted. A file exists only on the sim it was uploaded to, as on a real provider: looking it up on another sim
 * is a 404, and a chat or Responses request naming a file the sim does not hold is a 400 (`dispatch.ts`), which is
 * what file affinity in the proxy must avoid.
 */

import { errorBody, type Json, missingParameter, Rejection } from "./content.ts";
import { fileText, type SimForm } from "./form.ts";

const PURPOSES = new Set(["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]);

interface StoredFile {
  readonly object: Json;
  /** The content, when it was small enough to keep; else only its size is known. */
  readonly content: string | null;
}

export class FileBook {
  readonly #files = new Map<string, StoredFile>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  /** Stores the form's `file` with its `purpose`; a 400 when either is missing. */
  upload(form: SimForm, id: (prefix: string) => string): Json {
    const file = form.files.find((f) => f.field === "file");
    if (!file) throw missingParameter("file");
    const purpose = form.fields.purpose;
    if (!purpose) throw missingParameter("purpose");
    if (!PURPOSES.has(purpose)) {
      throw new Rejection(
        400,
        errorBody(
          `'${purpose}' is not one of ${[...PURPOSES].join(", ")} - 'purpose'`,
          "invalid_request_error",
          null,
          "purpose",
        ),
      );
    }
    return this.add(id("file"), file.filename, purpose, fileText(file), file.bytes);
  }

  /** Adds a file the sim made itself (a batch's output). */
  add(id: string, filename: string, purpose: string, content: string | null, bytes?: number): Json {
    const object: Json = {
      id,
      object: "file",
      bytes: bytes ?? new TextEncoder().encode(content ?? "").length,
      created_at: Math.floor(Date.now() / 1000),
      filename,
      purpose,
      status: "processed",
      expires_at: null,
      status_details: null,
    };
    if (this.#files.size >= this.#limit) this.#files.delete(this.#files.keys().next().value!);
    this.#files.set(id, { object, content });
    return object;
  }

  get(id: string): Json | undefined {
    return this.#files.get(id)?.object;
  }

  /** The file's content; a large upload reads back as that many `x` (its content was not kept). */
  content(id: string): string | undefined {
    const file = this.#files.get(id);
    if (!file) return undefined;
    return file.content ?? "x".repeat(Math.min(file.object.bytes as number, 1024 * 1024));
  }

  delete(id: string): Json | undefined {
    return this.#files.delete(id) ? { id, object: "file", deleted: true } : undefined;
  }

  /** A cursor page: newest first unless `order=asc`, after `after`, `limit` (default 10000), filtered by `purpose`. */
  list(search: URLSearchParams): Json {
    const purpose = search.get("purpose");
    const objects = [...this.#files.values()].map((file) => file.object)
      .filter((object) => !purpose || object.purpose === purpose);
    return page(search.get("order") === "asc" ? objects : objects.toReversed(), search, 10_000);
  }

  clear(): void {
    this.#files.clear();
  }
}

/** One page of a list in OpenAI's cursor shape. */
export function page(items: Json[], search: URLSearchParams, defaultLimit: number): Json {
  const after = search.get("after");
  const rest = after ? items.slice(items.findIndex((item) => item.id === after) + 1) : items;
  const limit = Math.max(1, Number(search.get("limit")) || defaultLimit);
  const data = rest.slice(0, limit);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: rest.length > limit,
  };
}
