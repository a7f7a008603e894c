/**
 * Which simulated endpoint a request is for, in the three URL layouts a proxy may use: OpenAI `/v1/...`, Azure
 * classic `/openai/deployments/{deployment}/...` and `/openai/...` (both with `?api-version=`), and Azure v1
 * `/openai/v1/...`. Pure; no I/O.
 */

export type Layout = "openai" | "azure" | "azure-v1";

/** Routes that Azure classic serves only under a deployment (and never outside one). */
const DEPLOYED = {
  "POST /chat/completions": "chat",
  "POST /embeddings": "embeddings",
  "POST /audio/transcriptions": "transcriptions",
  "POST /audio/translations": "translations",
  "POST /audio/speech": "speech",
  "POST /images/generations": "image-generations",
  "POST /images/edits": "image-edits",
} as const;

/** Routes outside any deployment. */
const PLAIN = {
  "POST /responses": "responses",
  "GET /models": "models",
  "POST /files": "create-file",
  "GET /files": "list-files",
  "POST /batches": "create-batch",
  "GET /batches": "list-batches",
  "GET /realtime": "realtime",
  // Azure has no moderations: the sim answers it only in OpenAI's layout.
  "POST /moderations": "moderations",
} as const;

/** Routes on one object: `/{collection}/{id}{suffix}`. */
const ITEMS = {
  "GET /responses": "response",
  "DELETE /responses": "delete-response",
  "POST /responses/cancel": "cancel-response",
  "GET /responses/input_items": "input-items",
  "GET /files": "file",
  "DELETE /files": "delete-file",
  "GET /files/content": "file-content",
  "GET /batches": "batch",
  "POST /batches/cancel": "cancel-batch",
} as const;

export type DeployedKind = (typeof DEPLOYED)[keyof typeof DEPLOYED];
export type PlainKind = (typeof PLAIN)[keyof typeof PLAIN];
export type ItemKind = (typeof ITEMS)[keyof typeof ITEMS];

export type Route =
  | { readonly kind: DeployedKind; readonly layout: Layout; readonly deployment: string | null }
  | { readonly kind: PlainKind; readonly layout: Layout }
  | { readonly kind: ItemKind; readonly layout: Layout; readonly id: string };

const ITEM = /^\/(responses|files|batches)\/([^/]+)(?:\/(input_items|cancel|content))?$/;

/** The route for `method` and `path`, or undefined when the sim has no such endpoint (a 404). */
export function route(method: string, path: string): Route | undefined {
  const where = locate(path);
  if (!where) return undefined;
  const { layout, deployment, rest } = where;
  const deployed = DEPLOYED[`${method} ${rest}` as keyof typeof DEPLOYED];
  if (deployed) {
    // Azure classic serves these only under a deployment.
    if (layout === "azure" && deployment === null) return undefined;
    return { kind: deployed, layout, deployment };
  }
  if (deployment !== null) return undefined;
  const plain = PLAIN[`${method} ${rest}` as keyof typeof PLAIN];
  if (plain === "moderations" && layout !== "openai") return undefined;
  if (plain) return { kind: plain, layout };
  const item = ITEM.exec(rest);
  if (!item) return undefined;
  const key = `${method} /${item[1]}${item[3] ? `/${item[3]}` : ""}`;
  const kind = ITEMS[key as keyof typeof ITEMS];
  return kind ? { kind, layout, id: safeDecode(item[2]) } : undefined;
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
