/**
 * A file upload written straight onto a TCP socket, so the test chooses the framing fetch would choose for it:
 * `content-length` (what the SDKs send for a file) or `transfer-encoding: chunked` with a chosen chunk size.
 * `written` counts the body bytes the kernel has taken, so a test sees when the proxy stops taking them.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const BOUNDARY = "llmproxy-raw-boundary";

export interface RawUploadOptions {
  /** Bytes of file content. */
  readonly size: number;
  /** Chunked framing with chunks of this size; without it, a `content-length` body. */
  readonly chunk?: number;
  /** Sent as `x-llmproxy-model-group`. */
  readonly group?: string;
}

export interface RawUpload {
  /** Body bytes written so far (framing not counted). */
  readonly written: number;
  /** The proxy's answer: its status and JSON body. */
  readonly done: Promise<{ status: number; body: Record<string, unknown> }>;
}

export function rawUpload(url: string, options: RawUploadOptions): RawUpload {
  const { hostname, port } = new URL(url);
  const head = encoder.encode(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n` +
      "Content-Type: application/octet-stream\r\n\r\n",
  );
  const tail = encoder.encode(`\r\n--${BOUNDARY}--\r\n`);
  const length = head.length + options.size + tail.length;
  const state = { written: 0 };
  const done = (async () => {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    try {
      await writeAll(
        conn,
        encoder.encode(
          `POST /v1/files HTTP/1.1\r\nhost: ${hostname}:${port}\r\nauthorization: Bearer k\r\n` +
            `content-type: multipart/form-data; boundary=${BOUNDARY}\r\nconnection: close\r\n` +
            (options.group ? `x-llmproxy-model-group: ${options.group}\r\n` : "") +
            (options.chunk ? "transfer-encoding: chunked\r\n\r\n" : `content-length: ${length}\r\n\r\n`),
        ),
      );
      const piece = new Uint8Array(options.chunk ?? 64 * 1024).fill(120);
      const send = async (bytes: Uint8Array) => {
        if (options.chunk) await writeAll(conn, encoder.encode(`${bytes.length.toString(16)}\r\n`));
        await writeAll(conn, bytes);
        if (options.chunk) await writeAll(conn, encoder.encode("\r\n"));
        state.written += bytes.length;
      };
      await send(head);
      for (let left = options.size; left > 0; left -= piece.length) {
        await send(left >= piece.length ? piece : piece.subarray(0, left));
      }
      await send(tail);
      if (options.chunk) await writeAll(conn, encoder.encode("0\r\n\r\n"));
      return parseAnswer(await readToEnd(conn));
    } finally {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  })();
  return {
    get written() {
      return state.written;
    },
    done,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(16 * 1024);
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    parts.push(buffer.slice(0, n));
  }
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  parts.reduce((at, part) => (all.set(part, at), at + part.length), 0);
  return all;
}

/** The status and JSON body of an answer read to its end (its body chunked or not). */
function parseAnswer(bytes: Uint8Array): { status: number; body: Record<string, unknown> } {
  const text = decoder.decode(bytes);
  const split = text.indexOf("\r\n\r\n");
  const head = text.slice(0, split);
  let body = text.slice(split + 4);
  if (/^transfer-encoding:\s*chunked/im.test(head)) {
    let joined = "";
    for (let at = 0;;) {
      const end = body.indexOf("\r\n", at);
      const size = parseInt(body.slice(at, end), 16);
      if (!size) break;
      joined += body.slice(end + 2, end + 2 + size);
      at = end + 2 + size + 2;
    }
    body = joined;
  }
  return { status: Number(head.split(" ")[1]), body: JSON.parse(body) };
}
