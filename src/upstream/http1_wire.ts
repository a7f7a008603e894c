/**
 * The HTTP/1.1 message format for the proxy's upstream client (`http1.ts`): a request as bytes, an answer's head
 * parsed and checked, and how its body is framed (RFC 9112, section 6.3). The reply built from them is
 * `http1_answer.ts`'s.
 */

import { rememberedTest } from "../util/pattern_memo.ts";

/** Largest answer head accepted (status line and headers). */
export const MAX_HEAD_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\r\n\0]/;
/**
 * What an answer's header value may not hold: a control character other than tab, or DEL (RFC 9110 5.5). Deno's
 * HTTP/1.1 writer (2.9.6) panics on such a value in a `Response` (whose constructor lets it through) and the whole
 * process aborts: an upstream that sends one gets its answer refused here, as for CR, LF and NUL.
 */
// deno-lint-ignore no-control-regex
const BAD_ANSWER_VALUE = /[\0-\x08\x0a-\x1f\x7f]/;
const NON_ASCII = /[\u0080-\uffff]/;
/** A header value that is either refused (`BAD_VALUE`) or not ASCII. */
const UNUSUAL_VALUE = /[\r\n\0\u0080-\uffff]/;
/** Whether a request header name is a token (names come from the config and a short list of client headers). */
const isToken = rememberedTest(TOKEN);
/** A reason phrase a web `Response` accepts: tab, space, visible ASCII and obs-text. */
const REASON = /^[\t -~\u0080-\u00ff]*$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |$)/;

/** An answer the client cannot read: bad framing, a head too large, a connection closed before the end. */
export class UpstreamProtocolError extends Error {
  override readonly name = "UpstreamProtocolError";
}

/** Bodies up to this size are copied behind their head, for one write; larger ones go as a second write. */
const ONE_WRITE_BYTES = 64 * 1024;

/** A request as bytes: head (Latin-1) and body (UTF-8), with its length; one buffer unless the body is large. */
export function requestBytes(
  method: string,
  /** The request line and `host` after the method: ` /path?query HTTP/1.1\r\nhost: h\r\n`. */
  start: string,
  headers: Readonly<Record<string, string>>,
  /** `chunked`: the head of a body that follows in chunks (`transfer-encoding: chunked`). */
  body: string | undefined | "chunked",
): Uint8Array | readonly [Uint8Array, Uint8Array] {
  let head = method + start;
  let ascii = !NON_ASCII.test(head);
  for (const name in headers) {
    const value = headers[name];
    // Header names and values come from the config and the client: neither may split the request.
    if (!isToken(name)) throw new TypeError("invalid upstream request header");
    if (UNUSUAL_VALUE.test(value)) {
      if (BAD_VALUE.test(value)) throw new TypeError("invalid upstream request header");
      ascii = false;
    }
    if (
      name === "host" || name === "content-length" || name === "connection" || name === "transfer-encoding"
    ) {
      continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  // The answer is parsed here (JSON, SSE): ask for it uncompressed.
  if (!("accept-encoding" in headers)) head += "accept-encoding: identity\r\n";
  if (body === "chunked") return headBytes(head + "transfer-encoding: chunked\r\n\r\n");
  // A POST without a body still says so (some front ends answer 411 otherwise), as fetch does.
  if (body === undefined) {
    return headBytes(head + (method === "GET" || method === "HEAD" ? "\r\n" : "content-length: 0\r\n\r\n"));
  }
  // The usual request: a small ASCII body (as many bytes as characters) after an ASCII head, encoded straight into
  // one buffer (each buffer made costs about a microsecond).
  if (ascii && body.length <= ONE_WRITE_BYTES) {
    const asciiHead = head + `content-length: ${body.length}\r\n\r\n`;
    const message = new Uint8Array(asciiHead.length + body.length);
    encoder.encodeInto(asciiHead, message);
    if (encoder.encodeInto(body, message.subarray(asciiHead.length)).read === body.length) return message;
  }
  const bytes = encoder.encode(body);
  head += `content-length: ${bytes.length}\r\n\r\n`;
  // A large body is not copied (10 MiB cost tens of milliseconds of the event loop): two writes.
  if (bytes.length > ONE_WRITE_BYTES) return [headBytes(head), bytes];
  const headed = headBytes(head);
  const message = new Uint8Array(headed.length + bytes.length);
  message.set(headed);
  message.set(bytes, headed.length);
  return message;
}

/** Header bytes are Latin-1, one byte per char (as fetch sends a header value), not UTF-8. */
function headBytes(head: string): Uint8Array {
  if (!NON_ASCII.test(head)) return encoder.encode(head);
  const bytes = new Uint8Array(head.length);
  for (let i = 0; i < head.length; i++) {
    const code = head.charCodeAt(i);
    if (code > 0xff) throw new TypeError("invalid upstream request header");
    bytes[i] = code;
  }
  return bytes;
}

/** Where an upstream URL's requests go: the connection's address and the start of each request. */
export interface Target {
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** The start of the request after its method: request line and `host`. */
  readonly start: string;
}

/** The target of an upstream URL; http and https only, no credentials in the URL. */
export function targetOf(url: string): Target {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`unsupported upstream protocol ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    throw new TypeError("credentials in an upstream URL are not supported");
  }
  const tls = parsed.protocol === "https:";
  return {
    origin: `${parsed.protocol}//${parsed.host}`,
    // URL keeps IPv6 hosts in brackets; connect wants them bare.
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port ? Number(parsed.port) : tls ? 443 : 80,
    tls,
    start: ` ${parsed.pathname}${parsed.search} HTTP/1.1\r\nhost: ${parsed.host}\r\n`,
  };
}

export interface Head {
  readonly status: number;
  readonly statusText: string;
  readonly headers: [string, string][];
  readonly keepAlive: boolean;
  /** The server's idle timeout from `keep-alive: timeout=N`; Infinity when not given. */
  readonly keepAliveMs: number;
  readonly contentLength?: string;
  readonly transferEncoding?: string;
  readonly contentEncoding?: string;
}

export function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const statusLine = STATUS_LINE.exec(lines[0]);
  if (!statusLine) throw new UpstreamProtocolError("malformed status line from the upstream");
  const status = Number(statusLine[2]);
  if (status < 100 || status > 599) {
    throw new UpstreamProtocolError("malformed status line from the upstream");
  }
  const headers: [string, string][] = [];
  let keepAliveMs = Infinity;
  let connection = "";
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let contentEncoding: string | undefined;
  // The last two lines are the blank line's split.
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) throw new UpstreamProtocolError("malformed header line from the upstream");
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) throw new UpstreamProtocolError("malformed header name from the upstream");
    const value = line.slice(colon + 1).trim();
    if (BAD_ANSWER_VALUE.test(value)) {
      throw new UpstreamProtocolError("malformed header value from the upstream");
    }
    switch (name) {
      case "content-length":
        if (contentLength !== undefined && contentLength !== value) {
          throw new UpstreamProtocolError("conflicting content-length from the upstream");
        }
        contentLength = value;
        break;
      case "transfer-encoding":
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case "connection":
        connection += `${value.toLowerCase()},`;
        break;
      case "content-encoding":
        // Codings given in two lines are two codings, as in one line.
        contentEncoding = contentEncoding === undefined
          ? value.toLowerCase()
          : `${contentEncoding}, ${value}`;
        break;
      case "keep-alive": {
        const timeout = /(?:^|[\s,])timeout=(\d+)/i.exec(value);
        if (timeout) keepAliveMs = Number(timeout[1]) * 1000;
        break;
      }
    }
    headers.push([name, value]);
  }
  const http11 = statusLine[1] === "1";
  // A length beside a transfer coding may be a smuggling attempt: this answer is read, the connection not reused.
  const keepAlive = http11 && !/(^|[\s,])close\s*,/.test(connection) &&
    !(contentLength !== undefined && transferEncoding !== undefined);
  const reason = lines[0].slice(13);
  return {
    status,
    statusText: REASON.test(reason) ? reason : "",
    headers,
    keepAlive,
    keepAliveMs,
    contentLength,
    transferEncoding,
    contentEncoding,
  };
}

export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

/** How the body of an answer ends (RFC 9112, section 6.3). */
export function bodyFraming(method: string, head: Head): Framing {
  const { status } = head;
  if (method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
  if (head.transferEncoding !== undefined) {
    const codings = head.transferEncoding.toLowerCase().split(",").map((coding) => coding.trim());
    // Only chunked is asked for (no TE header is sent); with it the length is ignored.
    if (codings.some((coding) => coding !== "chunked" && coding !== "identity")) {
      throw new UpstreamProtocolError("unsupported transfer coding from the upstream");
    }
    return codings.includes("chunked") ? { kind: "chunked" } : { kind: "close" };
  }
  if (head.contentLength !== undefined) {
    const values = head.contentLength.split(",").map((value) => value.trim());
    if (!values.every((value) => value === values[0] && /^\d{1,15}$/.test(value))) {
      throw new UpstreamProtocolError("malformed content-length from the upstream");
    }
    return { kind: "length", length: Number(values[0]) };
  }
  return { kind: "close" };
}

/** The value of a hex digit's byte (a chunk size's), -1 when it is not one. */
export function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48; // 0-9
  if (byte >= 97 && byte <= 102) return byte - 87; // a-f
  if (byte >= 65 && byte <= 70) return byte - 55; // A-F
  return -1;
}
