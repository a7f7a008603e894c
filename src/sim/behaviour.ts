/** What the simulated upstream is told to do with a request, and what it records of each. */

/** What the sim does with a request. */
export type Behaviour =
  /** Answer normally. */
  | { readonly kind: "ok" }
  /** Answer with this status; `body` defaults to an OpenAI error envelope (a string is sent as is). */
  | {
    readonly kind: "status";
    readonly status: number;
    readonly body?: unknown;
    readonly headers?: Readonly<Record<string, string>>;
  }
  /** Accept and never answer, until the client aborts or the sim closes. */
  | { readonly kind: "hang" }
  /** Stream: send `afterChunks` SSE frames (never the last) then cut the connection. Otherwise: 200, no body. */
  | { readonly kind: "cut"; readonly afterChunks: number }
  /** 200 with a body that is not valid JSON (or SSE data that is not). */
  | { readonly kind: "malformed" };

export const OK: Behaviour = { kind: "ok" };

export type AuthKind = "bearer" | "api-key";

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  /** The query string with its `?`, or "". */
  readonly search: string;
  /** Lower-cased names. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Parsed JSON, else the raw text; undefined without a body. A multipart body is its fields by name, each file
   * as `{ filename, type, bytes }` (the size, never the content).
   */
  readonly body: unknown;
  /** Which credential header came: `api-key` wins when both did. */
  readonly auth: AuthKind | null;
  /** `Date.now()` on arrival. */
  readonly at: number;
}

/** The credential a request carries; `api-key` wins when both came. */
export function authKind(headers: Headers): AuthKind | null {
  if (headers.has("api-key")) return "api-key";
  return /^Bearer \S/i.test(headers.get("authorization") ?? "") ? "bearer" : null;
}
