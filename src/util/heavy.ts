/**
 * Big synchronous work (decoding, parsing, hashing or serialising a body of several MiB) runs one piece at a
 * time across the whole process, each piece after a turn of the event loop, so requests that arrive meanwhile
 * (`/health`, small chats) are served between pieces instead of after every big body's work. Small work (every
 * ordinary request) runs at once, with no extra await.
 */

import { sleep } from "./timer.ts";

/** Work on this many bytes (or UTF-16 characters) or more is big. */
export const BIG_WORK = 256 * 1024;

let queue: Promise<unknown> = Promise.resolve();

const turn = () => sleep(0);

/**
 * Runs `work` now when `size` is small. Big work waits for the big work queued before it, then runs between two
 * turns of the loop, so neither the work before it nor what its caller does next runs in the same stretch.
 */
export function heavy<T>(size: number, work: () => T): T | Promise<T> {
  if (size < BIG_WORK) return work();
  const run = queue.then(turn).then(work);
  queue = run.then(turn, turn);
  return run.then(async (value) => (await turn(), value));
}

const sizes = new WeakMap<object, number>();

/**
 * Remembers how long the text a parsed body came from was, for `sizeOf`: only when its work is big (every reader
 * compares it with `BIG_WORK`). An entry per ordinary request cost ~0.5-0.9% of the proxy's busy time (the weak
 * map's table grows with the entries of bodies already dead until a collection clears them).
 */
export function noteSize<T extends object>(body: T, size: number): T {
  if (size >= BIG_WORK) sizes.set(body, size);
  return body;
}

/** The text length noted for `body`; 0 when none was or it was small (then its work counts as small). */
export const sizeOf = (body: object): number => sizes.get(body) ?? 0;
