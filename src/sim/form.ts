/**
 * The simulated upstream's reading of a `multipart/form-data` body, as it streams in: text fields whole, files
 * counted, and a file's content kept only while it is small (a batch's input is read back; a 200 MB upload is
 * counted and dropped).
 */

import { MultipartScanner } from "../multipart/scanner.ts";

export interface SimFile {
  readonly field: string;
  readonly filename: string;
  readonly type: string | null;
  /** Bytes received. */
  bytes: number;
  /** The content while it is at most `KEEP_FILE_BYTES`; null once larger. */
  content: Uint8Array[] | null;
}

export interface SimForm {
  readonly fields: Record<string, string>;
  readonly files: SimFile[];
  /** Bytes of the whole body. */
  readonly length: number;
}

/** Files up to this size are kept in memory. */
export const KEEP_FILE_BYTES = 4 * 1024 * 1024;
/** Text fields are cut at this length. */
const FIELD_LIMIT = 64 * 1024;

const decoder = new TextDecoder();

/** Reads the whole body; throws a 400 `ProxyError` on a malformed one. */
export async function readForm(body: ReadableStream<Uint8Array> | null, boundary: string): Promise<SimForm> {
  const scanner = new MultipartScanner(boundary);
  const fields: Record<string, string> = {};
  const files: SimFile[] = [];
  let field: string | null = null;
  let file: SimFile | null = null;
  let length = 0;
  const take = (chunk: Uint8Array) => {
    for (const event of scanner.push(chunk)) {
      if (event.kind === "part") {
        file = null;
        field = null;
        if (event.filename === null) fields[field = event.name] = "";
        else {
          file = {
            field: event.name,
            filename: event.filename,
            type: event.contentType,
            bytes: 0,
            content: [],
          };
          files.push(file);
        }
      } else if (event.kind === "data" && file) {
        file.bytes += event.raw.length;
        if (file.bytes > KEEP_FILE_BYTES) file.content = null;
        else file.content?.push(event.raw.slice());
      } else if (event.kind === "data" && field !== null && fields[field].length < FIELD_LIMIT) {
        fields[field] += decoder.decode(event.raw);
      } else if (event.kind === "other") {
        field = null;
        file = null;
      }
    }
  };
  if (body) {
    for await (const chunk of body) {
      length += chunk.length;
      take(chunk);
    }
  }
  scanner.finish();
  return { fields, files, length };
}

/** A file's kept content as text; null when it was too large to keep. */
export function fileText(file: SimFile): string | null {
  if (!file.content) return null;
  return file.content.map((piece) => decoder.decode(piece, { stream: true })).join("") + decoder.decode();
}

/** What a request record shows of a form: its fields, and per file field its name, type and size. */
export function formRecord(form: SimForm): Record<string, unknown> {
  const record: Record<string, unknown> = { ...form.fields };
  for (const file of form.files) {
    record[file.field] = { filename: file.filename, type: file.type, bytes: file.bytes };
  }
  return record;
}
