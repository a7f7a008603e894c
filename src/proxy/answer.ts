/**
 * A whole (non-streamed) answer from the pipeline. The pipeline has already read it and parsed it to check it is
 * JSON, so its bytes, text and parsed value travel with the Response: the layers around the pipeline (cache,
 * Responses affinity, budgets) use them instead of reading the body and parsing it again, and hand the same
 * Response on to the client.
 */

export class JsonAnswer extends Response {
  /** The answer exactly as the upstream sent it (the body of this Response, which stays unread). */
  readonly payload: Uint8Array<ArrayBuffer>;
  /** `payload` decoded as UTF-8. */
  readonly payloadText: string;
  /** `payloadText` parsed. */
  readonly parsed: unknown;
  /**
   * The headers this Response was made with. Read these, not `headers`: reading a Response's `headers` throws
   * away the native copy Deno prepared to serve it with.
   */
  readonly headerRecord: Readonly<Record<string, string>>;

  constructor(
    payload: Uint8Array<ArrayBuffer>,
    payloadText: string,
    parsed: unknown,
    init: { status: number; headers: Record<string, string> },
  ) {
    super(payload, init);
    this.payload = payload;
    this.payloadText = payloadText;
    this.parsed = parsed;
    this.headerRecord = init.headers;
  }
}

const decoder = new TextDecoder();

/** The whole answer as a `JsonAnswer`: the pipeline's own as it is, any other Response read (once) into one. */
export async function toJsonAnswer(response: Response): Promise<JsonAnswer> {
  if (response instanceof JsonAnswer) return response;
  const payload = await response.bytes();
  const text = decoder.decode(payload);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => headers[name] = value);
  return new JsonAnswer(payload, text, parsed, { status: response.status, headers });
}
