/**
 * Watching upstream attempts from the one place every attempt passes: the upstream client. An observer is told
 * when an attempt is sent and gets back a watch for it, which hears how it was answered and when it is over (its
 * body read or given up: for a stream, when the stream ends). The dashboard's rolling histories and the tracing
 * spans are both built from these.
 */

import type { UpstreamRequest } from "./client.ts";

export interface AttemptWatch {
  /** Response headers arrived with this status. */
  answered(status: number): void;
  /** No answer: the attempt timed out, could not connect (or was cut), or the client left. */
  failed(kind: "timeout" | "connection" | "aborted"): void;
  /** The attempt is over; called once, after `answered` or `failed`. */
  ended(): void;
}

export interface AttemptObserver {
  start(request: UpstreamRequest): AttemptWatch;
}

/** Several observers as one; undefined when there are none (the client then skips watching entirely). */
export function observeAll(observers: readonly (AttemptObserver | undefined)[]): AttemptObserver | undefined {
  const present = observers.filter((observer): observer is AttemptObserver => observer !== undefined);
  if (present.length <= 1) return present[0];
  return {
    start(request) {
      const watches = present.map((observer) => observer.start(request));
      return {
        answered: (status) => watches.forEach((watch) => watch.answered(status)),
        failed: (kind) => watches.forEach((watch) => watch.failed(kind)),
        ended: () => watches.forEach((watch) => watch.ended()),
      };
    },
  };
}
