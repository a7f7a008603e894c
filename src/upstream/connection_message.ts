/**
 * What a failed upstream connection is called in logs, errors and metrics: a short reason (refused, reset, name
 * resolution, TLS), never the upstream URL or a header value, which may carry credentials.
 */

import { UpstreamProtocolError } from "./http1.ts";

/** A short reason for a failed connection that never includes the upstream URL (it may carry credentials). */
export function connectionMessage(error: unknown): string {
  // fetch throws TypeErrors for requests it cannot build, and their text may quote a header value (the key).
  if (error instanceof TypeError && /header/i.test(error.message)) return "invalid upstream request headers";
  if (error instanceof UpstreamProtocolError) return error.message;
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const cleaned = text.replace(/\(?\b[a-z][a-z0-9+.-]*:\/\/[^\s)]*\)?/gi, "").replace(/\s+/g, " ").trim();
  if (/refused/i.test(cleaned)) return "connection refused";
  if (/reset|closed|broken pipe|eof/i.test(cleaned)) return "connection reset";
  if (/dns|lookup|resolve|name or service/i.test(cleaned)) return "name resolution failed";
  if (/certificate|tls|ssl/i.test(cleaned)) return "TLS error";
  return cleaned.slice(0, 120) || "connection error";
}
