/**
 * The one place for reads whose answer decides a client's answer: whose a response or a file is, and which
 * endpoint holds a conversation. They wait for a slow shared store (a slow answer is not an outage), and when it
 * cannot answer and this instance holds no record, the client is told so: 503 `store_unavailable` with
 * `Retry-After`, never a 404 or 400 that says the object does not exist.
 */

import { ProxyError } from "../errors.ts";
import type { Store } from "./store.ts";

/** How long such a read waits for a slow Redis before it falls back to local state. */
export const PATIENT_READ_MS = 2000;

/** Seconds a client is asked to wait before it tries again: about when a node served locally is tried again. */
const RETRY_AFTER_S = "1";

/**
 * The value at `key` (null when the store knows it is absent); throws a 503 `store_unavailable` when the store
 * cannot tell now. `what` names the record in the message, e.g. "the owner of response 'resp_1'".
 */
export async function readPatiently(store: Store, key: string, what: string): Promise<string | null> {
  try {
    return await (store.getPatiently ? store.getPatiently(key, PATIENT_READ_MS) : store.get(key));
  } catch (error) {
    throw storeUnavailable(what, error);
  }
}

export function storeUnavailable(what: string, cause?: unknown): ProxyError {
  return new ProxyError(
    503,
    "service_unavailable",
    "store_unavailable",
    `Cannot tell ${what} now: the shared store (Redis) does not answer; try again`,
    { headers: { "Retry-After": RETRY_AFTER_S }, cause },
  );
}

/** Whether `error` is `readPatiently`'s "cannot tell now". */
export function isStoreUnavailable(error: unknown): error is ProxyError {
  return error instanceof ProxyError && error.code === "store_unavailable";
}
