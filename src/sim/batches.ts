/**
 * Batches of the simulated upstream. A batch reads its input file from this sim's own files (a file uploaded to
 * another sim is a 400 here, as on a real provider), is `validating` when created, and has finished the first
 * time it is retrieved: its output file then holds one chat completion per input line.
 */

import { chatCompletion } from "./chat.ts";
import { errorBody, isObject, type Json, Rejection, type SimContext } from "./content.ts";
import { type FileBook, page } from "./files.ts";

export class BatchBook {
  readonly #batches = new Map<string, Json>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  create(body: Json, files: FileBook, ctx: SimContext): Json {
    const fileId = body.input_file_id;
    if (typeof fileId !== "string" || fileId === "") {
      throw invalid("Missing required parameter: 'input_file_id'.", "input_file_id");
    }
    if (!files.get(fileId)) {
      throw invalid(
        `Invalid 'input_file_id': no file '${fileId}' on this resource.`,
        "input_file_id",
        "invalid_file",
      );
    }
    if (typeof body.endpoint !== "string" || !body.endpoint.startsWith("/")) {
      throw invalid("Missing required parameter: 'endpoint'.", "endpoint");
    }
    const now = Math.floor(Date.now() / 1000);
    const batch: Json = {
      id: ctx.id("batch"),
      object: "batch",
      endpoint: body.endpoint,
      errors: null,
      input_file_id: fileId,
      completion_window: typeof body.completion_window === "string" ? body.completion_window : "24h",
      status: "validating",
      output_file_id: null,
      error_file_id: null,
      created_at: now,
      expires_at: now + 86_400,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: isObject(body.metadata) ? body.metadata : null,
    };
    if (this.#batches.size >= this.#limit) this.#batches.delete(this.#batches.keys().next().value!);
    this.#batches.set(batch.id as string, batch);
    return batch;
  }

  /** The batch; one still validating finishes now (its output file is written), one cancelling is cancelled. */
  get(id: string, files: FileBook, ctx: SimContext): Json | undefined {
    const batch = this.#batches.get(id);
    if (!batch) return undefined;
    const now = Math.floor(Date.now() / 1000);
    if (batch.status === "cancelling") Object.assign(batch, { status: "cancelled", cancelled_at: now });
    if (batch.status !== "validating") return batch;
    const lines = (files.content(batch.input_file_id as string) ?? "").split("\n").filter((line) =>
      line.trim()
    );
    const output = lines.map((line) => outputLine(line, ctx));
    const outputId = ctx.id("file");
    files.add(
      outputId,
      `${batch.id}_output.jsonl`,
      "batch_output",
      output.map((o) => JSON.stringify(o)).join("\n") + "\n",
    );
    const failed = output.filter((o) => o.error !== null).length;
    return Object.assign(batch, {
      status: "completed",
      in_progress_at: now,
      finalizing_at: now,
      completed_at: now,
      output_file_id: outputId,
      request_counts: { total: output.length, completed: output.length - failed, failed },
    });
  }

  cancel(id: string): Json | undefined {
    const batch = this.#batches.get(id);
    if (!batch) return undefined;
    if (batch.status !== "validating" && batch.status !== "in_progress") {
      throw invalid(`Cannot cancel a batch with status '${batch.status}'.`, null);
    }
    return Object.assign(batch, { status: "cancelling", cancelling_at: Math.floor(Date.now() / 1000) });
  }

  list(search: URLSearchParams): Json {
    return page([...this.#batches.values()].toReversed(), search, 20);
  }

  clear(): void {
    this.#batches.clear();
  }
}

/** The output line for one input line: a chat completion, or the line's error. */
function outputLine(line: string, ctx: SimContext): Json {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    request = undefined;
  }
  const id = ctx.id("batch_req");
  if (!isObject(request) || !isObject(request.body)) {
    return {
      id,
      custom_id: null,
      response: null,
      error: { code: "invalid_json", message: "Line is not a request" },
    };
  }
  const body = request.body;
  const model = typeof body.model === "string" ? body.model : "";
  return {
    id,
    custom_id: request.custom_id ?? null,
    response: {
      status_code: 200,
      request_id: id,
      body: chatCompletion(body, model, { ...ctx, bodyLength: line.length }),
    },
    error: null,
  };
}

function invalid(message: string, param: string | null, code: string | null = null): Rejection {
  return new Rejection(400, errorBody(message, "invalid_request_error", code, param));
}
