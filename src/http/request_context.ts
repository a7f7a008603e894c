/**
 * What the generation routes' middleware, handler and error handler use of a request's context. Hono's `Context`
 * has all of it; so has `DirectContext`, which direct_routes.ts makes for each request it serves: Hono's context
 * builds sixteen closures and a request wrapper per request, this one nothing but itself.
 */

import type { Context, Env, Next } from "hono";
import type { HeaderReader } from "../core/header_reader.ts";
import type { PairHeaders } from "./header_pairs.ts";
import { servedHeaders } from "./served_request.ts";

/** The part of Hono's `Context` the generation routes use (Hono's own contexts fit it). */
export interface RequestContext<E extends Env> {
  readonly req: {
    readonly raw: Request;
    /** The path, as Hono's router matched it. */
    readonly path: string;
    readonly method: string;
    header(name: string): string | undefined;
  };
  readonly get: Context<E>["get"];
  readonly set: Context<E>["set"];
  /** What a middleware or the route threw, once rendered as `res`. */
  error: Error | undefined;
  res: Response;
}

type Variables<E extends Env> = NonNullable<E["Variables"]>;

/** A request's context on the direct path: its variables and its answer. */
export class DirectContext<E extends Env> implements RequestContext<E> {
  readonly req: DirectRequest;
  error: Error | undefined = undefined;
  #res: Response | undefined = undefined;
  readonly #variables: Partial<Variables<E>> = {};

  constructor(raw: Request, path: string) {
    this.req = new DirectRequest(raw, path);
  }

  get<K extends keyof Variables<E>>(key: K): Variables<E>[K] {
    return this.#variables[key] as Variables<E>[K];
  }

  set<K extends keyof Variables<E>>(key: K, value: Variables<E>[K]): void {
    this.#variables[key] = value;
  }

  /** The answer; an empty 200 until one is set (as Hono's). */
  get res(): Response {
    return this.#res ??= new Response(null);
  }

  set res(answer: Response) {
    this.#res = answer;
  }
}

class DirectRequest {
  #headers: PairHeaders | undefined;

  constructor(readonly raw: Request, readonly path: string) {}

  get method(): string {
    return this.raw.method;
  }

  /** Every reader of the request's headers on the direct path reads this one list (served_request.ts). */
  get headers(): PairHeaders {
    return this.#headers ??= servedHeaders(this.raw);
  }

  header(name: string): string | undefined {
    return this.headers.get(name) ?? undefined;
  }
}

/** The request's headers: on the direct path its one list, on Hono's the request's `Headers`. */
export function headersOf<E extends Env>(c: RequestContext<E>): HeaderReader {
  return c.req instanceof DirectRequest ? c.req.headers : c.req.raw.headers;
}

/** A middleware the direct path can run: it uses only the `RequestContext` part of Hono's context. */
export type Middleware<E extends Env = Env> = (c: RequestContext<E>, next: Next) => Promise<Response | void>;
