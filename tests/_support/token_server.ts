/**
 * A stand-in for the Microsoft identity platform's token endpoint (`/{tenant}/oauth2/v2.0/token`) and the Azure
 * instance metadata token endpoint (`/metadata/identity/oauth2/token`), on 127.0.0.1: records what it was asked,
 * issues `tok-1`, `tok-2`, ... and can be told to refuse, to answer slowly, or to answer as a test says.
 */

export interface TokenCall {
  readonly method: string;
  readonly path: string;
  /** The form body (POST) or the query (GET), as a plain record. */
  readonly params: Readonly<Record<string, string>>;
  readonly metadataHeader: string | null;
}

export interface TokenServer extends AsyncDisposable {
  readonly url: string;
  readonly calls: TokenCall[];
  /** Seconds each issued token lives. Default 3600. */
  lifetimeSeconds: number;
  /** Pause before each answer, in ms. Default 0. */
  delayMs: number;
  /** When set, every request gets this status with an identity-platform error body. */
  failWith: number | undefined;
  /** When set, every request gets what it returns (given the number of the token it would have issued). */
  reply: ((issued: number) => Response) | undefined;
}

export function startTokenServer(): TokenServer {
  let issued = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const params = request.method === "POST"
      ? Object.fromEntries(new URLSearchParams(await request.text()))
      : Object.fromEntries(url.searchParams);
    state.calls.push({
      method: request.method,
      path: url.pathname,
      params,
      metadataHeader: request.headers.get("metadata"),
    });
    if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
    if (state.failWith !== undefined) {
      return Response.json({
        error: "invalid_client",
        error_description: "AADSTS7000215: Invalid client secret provided. Trace ID: 1234",
      }, { status: state.failWith });
    }
    issued++;
    if (state.reply) return state.reply(issued);
    const imds = url.pathname === "/metadata/identity/oauth2/token";
    if (imds && request.headers.get("metadata") !== "true") {
      return Response.json({
        error: "invalid_request",
        error_description: "Required metadata header not specified",
      }, {
        status: 400,
      });
    }
    const lifetime = state.lifetimeSeconds;
    return Response.json(
      imds
        ? {
          access_token: `tok-${issued}`,
          expires_in: String(lifetime),
          expires_on: String(Math.floor(Date.now() / 1000) + lifetime),
          resource: params.resource,
          token_type: "Bearer",
        }
        : {
          token_type: "Bearer",
          expires_in: lifetime,
          ext_expires_in: lifetime,
          access_token: `tok-${issued}`,
        },
    );
  });
  const state: TokenServer = {
    url: `http://127.0.0.1:${server.addr.port}`,
    calls: [],
    lifetimeSeconds: 3600,
    delayMs: 0,
    failWith: undefined,
    reply: undefined,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
  return state;
}
