/**
 * The wire side of the bench's raw engine (`http1_server.ts`): a connection's read buffer, a request head parsed
 * and checked from its bytes, chunked framing of an answer's body.
 */

import { socketRead } from "../../src/upstream/socket_read.ts";

export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_HEADERS = 100;
export const CR = 13;
export const LF = 10;
export const encoder = new TextEncoder();
export const latin1 = new TextDecoder("latin1");
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.([01])$/;
export const END = encoder.encode("0\r\n\r\n");

let date = "";
let dateAt = 0;
export function httpDate(): string {
  const now = Date.now();
  if (now - dateAt >= 1000) {
    dateAt = now - (now % 1000);
    date = new Date(dateAt).toUTCString();
  }
  return date;
}

export class Wire {
  buffer: Uint8Array<ArrayBuffer> = new Uint8Array(4096);
  start = 0;
  end = 0;
  #reading: Promise<number> | undefined;
  constructor(readonly conn: Deno.Conn) {}

  /** One read behind the buffered bytes (shared by whoever asks while it is pending); 0 at the end. */
  fill(): Promise<number> {
    if (this.#reading) return this.#reading;
    if (this.start === this.end) this.start = this.end = 0;
    else if (this.end === this.buffer.length) {
      if (this.start === 0) {
        const grown = new Uint8Array(this.buffer.length * 2);
        grown.set(this.buffer);
        this.buffer = grown;
      } else {
        this.buffer.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
    }
    const reading = socketRead(this.conn, this.buffer.subarray(this.end)).then(
      (read) => {
        this.#reading = undefined;
        this.end += read ?? 0;
        return read ?? 0;
      },
      () => {
        this.#reading = undefined;
        return 0;
      },
    );
    return this.#reading = reading;
  }

  /** The offset of the blank line ending a head at `start`, searching from `from`; -1 when not buffered. */
  headEnd(from: number): number {
    const { buffer, end } = this;
    for (let at = from; at + 3 < end; at++) {
      if (buffer[at + 3] !== LF) continue;
      if (buffer[at] === CR && buffer[at + 1] === LF && buffer[at + 2] === CR) return at;
    }
    return -1;
  }
}

export class BadRequest extends Error {}

export interface Head {
  readonly method: string;
  readonly target: string;
  readonly minor: number;
  readonly headers: [string, string][];
  readonly length: number;
  readonly close: boolean;
  readonly host: string;
}

export function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const line = REQUEST_LINE.exec(lines[0]);
  if (!line) throw new BadRequest();
  if (lines.length - 1 > MAX_HEADERS) throw new BadRequest();
  const headers: [string, string][] = [];
  let length = 0;
  let lengthSeen: string | undefined;
  let close = line[3] === "0";
  let host = "";
  for (let i = 1; i < lines.length; i++) {
    const header = lines[i];
    const colon = header.indexOf(":");
    if (colon <= 0) throw new BadRequest();
    const name = header.slice(0, colon).toLowerCase();
    const value = header.slice(colon + 1).trim();
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) throw new BadRequest();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (lengthSeen !== undefined && lengthSeen !== value)) {
        throw new BadRequest();
      }
      lengthSeen = value;
      length = Number(value);
    } else if (name === "transfer-encoding") throw new BadRequest();
    else if (name === "connection") close = /\bclose\b/i.test(value) || (close && !/keep-alive/i.test(value));
    else if (name === "host") host = value;
    headers.push([name, value]);
  }
  return { method: line[1], target: line[2], minor: Number(line[3]), headers, length, close, host };
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) written += await conn.write(bytes.subarray(written));
}

export function chunk(data: Uint8Array): Uint8Array {
  const size = data.length.toString(16);
  const out = new Uint8Array(size.length + 4 + data.length);
  encoder.encodeInto(size, out);
  out[size.length] = CR;
  out[size.length + 1] = LF;
  out.set(data, size.length + 2);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}
