/**
 * Which simulated endpoint a request is for, in the three URL layouts a proxy may use: OpenAI `/v1/...`, Azure
 * classic `/openai/deployments/{deployment}/...` and `/openai/responses` (both with `?api-version=`), and Azure v1
 * `/openai/v1/...`. Pure; no I/O.
 */

export type Layout = "openai" | "azure" | "azure-v1";

export type Route =
  | { readonly kind: "chat" | "embeddings"; readonly layout: Layout; readonly deployment: string | null }
  | { readonly kind: "responses"; readonly layout: Layout }
  | { readonly kind: "models"; readonly layout: Layout }
  | {
    readonly kind: "response" | "delete-response" | "cancel-response" | "input-items";
    readonly layout: Layout;
    readonly id: string;
  };

const RESPONSE_ITEM = /^\/responses\/([^/]+)(\/input_items|\/cancel)?$/;

/** The route for `method` and `path`, or undefined when the sim has no such endpoint (a 404). */
export function route(method: string, path: string): Route | undefined {
  const where = locate(path);
  if (!where) return undefined;
  const { layout, deployment, rest } = where;
  if (method === "POST" && (rest === "/chat/completions" || rest === "/embeddings")) {
    // Azure classic serves these only under a deployment.
    if (layout === "azure" && deployment === null) return undefined;
    return { kind: rest === "/embeddings" ? "embeddings" : "chat", layout, deployment };
  }
  if (deployment !== null) return undefined;
  if (method === "POST" && rest === "/responses") return { kind: "responses", layout };
  if (method === "GET" && rest === "/models") return { kind: "models", layout };
  const item = RESPONSE_ITEM.exec(rest);
  if (!item) return undefined;
  const id = safeDecode(item[1]);
  if (item[2] === "/cancel") return method === "POST" ? { kind: "cancel-response", layout, id } : undefined;
  if (item[2]) return method === "GET" ? { kind: "input-items", layout, id } : undefined;
  if (method === "GET") return { kind: "response", layout, id };
  if (method === "DELETE") return { kind: "delete-response", layout, id };
  return undefined;
}

function locate(path: string): { layout: Layout; deployment: string | null; rest: string } | undefined {
  if (path.startsWith("/v1/")) return { layout: "openai", deployment: null, rest: path.slice(3) };
  if (path.startsWith("/openai/v1/")) return { layout: "azure-v1", deployment: null, rest: path.slice(10) };
  if (path.startsWith("/openai/deployments/")) {
    const tail = path.slice("/openai/deployments/".length);
    const slash = tail.indexOf("/");
    if (slash <= 0) return undefined;
    return { layout: "azure", deployment: safeDecode(tail.slice(0, slash)), rest: tail.slice(slash) };
  }
  if (path.startsWith("/openai/")) return { layout: "azure", deployment: null, rest: path.slice(7) };
  return undefined;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
