/**
 * What the pipeline owes the caller admission named (`Identity`): the headers its checks gave (a key's
 * `x-ratelimit-*`, which replace the upstream's) on every answer and error, and one `finish` once the answer has
 * ended (a stream: its last byte or its cancellation) or the request failed.
 */

import type { Answer } from "../core/answer.ts";
import type { Identity } from "../core/request.ts";
import { ClientGone, ProxyError } from "../errors.ts";
import { tapStream } from "./tap.ts";

/** The answer with the caller's headers, and `finish` called when it ends. */
export async function answerCaller(identity: Identity, answer: Answer): Promise<Answer> {
  const extra = identity.pending ? await identity.pending : undefined;
  let headers = answer.headers;
  if (extra && Object.keys(extra).length > 0) {
    const own: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith("x-ratelimit-")) own[name] = value;
    }
    headers = { ...own, ...extra };
  }
  const finish = identity.finish;
  if (answer.body.kind !== "stream" || !finish) {
    finish?.();
    return headers === answer.headers ? answer : { ...answer, headers };
  }
  const stream = tapStream(answer.body.stream, () => {}, () => finish());
  return { ...answer, headers, body: { kind: "stream", stream } };
}

/**
 * The request failed: `finish`, its token estimate given back (`unused`), and a proxy error gains the caller's
 * headers (when admission passed).
 */
export async function failCaller(identity: Identity, error: unknown): Promise<unknown> {
  // No answer, no tokens used (a client that left may have had some spent upstream: its estimate stays). Given
  // back before `finish`, which charges it with the release of the request's place in one store call.
  if (!(error instanceof ClientGone)) identity.unused?.();
  identity.finish?.();
  // Exactly a ProxyError: subclasses (a client that left) keep their identity.
  if (!(error instanceof ProxyError) || error.constructor !== ProxyError || !identity.pending) return error;
  const extra = await identity.pending.catch(() => undefined);
  if (!extra || Object.keys(extra).length === 0) return error;
  return new ProxyError(error.status, error.type, error.code, error.message, {
    param: error.param,
    headers: { ...extra, ...error.headers },
    cause: error.cause,
  });
}
