/** Reading an upstream answer's head off a connection (`http1_connection.ts`) for the HTTP/1.1 client. */

import type { Connection } from "./http1_connection.ts";
import { type Head, MAX_HEAD_BYTES, parseHead, UpstreamProtocolError } from "./http1_wire.ts";

/**
 * Reads the answer's head, skipping interim (1xx) answers. Not async: a request waits for its answer in the socket
 * read's promise alone, without frames of its own here (every request in flight holds them). `scanned`: bytes of
 * the head already searched for its end.
 */
export function readHead(connection: Connection, scanned = 0): Promise<Head> {
  try {
    for (;;) {
      const end = connection.blankLineEnd(MAX_HEAD_BYTES, scanned);
      if (end < 0) {
        const searched = Math.max(0, connection.available - 3);
        return connection.fill(MAX_HEAD_BYTES + 4).then((more) => {
          if (more) return readHead(connection, searched);
          throw new UpstreamProtocolError(
            connection.answered
              ? "the upstream closed the connection mid-answer"
              : "the upstream closed the connection",
          );
        });
      }
      scanned = 0;
      const head = parseHead(connection.takeText(end));
      if (head.status >= 200) return Promise.resolve(head);
      if (head.status === 101) throw new UpstreamProtocolError("the upstream switched protocols");
    }
  } catch (error) {
    return Promise.reject(error);
  }
}
