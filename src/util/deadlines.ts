/**
 * Per-request deadlines (upstream timeouts, body-upload limits) on one shared timer instead of a `setTimeout` each.
 * Almost every deadline is cancelled long before it fires, so what matters is that arming and cancelling are cheap
 * and that a cancelled one lets go of its callback (and whatever the callback holds) at once.
 *
 * Deadlines with the same duration expire in the order they were armed, so each duration keeps a doubly linked
 * list: arming appends, cancelling unlinks, expiry pops from the head. One timer is armed for the earliest head;
 * when that head is cancelled the timer is left alone and, when it fires, simply re-arms for the new head.
 */

import { MAX_TIMER_MS, startTimer, type Timer } from "./timer.ts";

export interface Deadline {
  /** Cancels the deadline; safe to call more than once, and after it fired. */
  cancel(): void;
}

/** What a deadline's `cancel` updates: the count of armed deadlines and the shared timer. */
interface Armed {
  count: number;
  timer: Timer | undefined;
}

/** An armed deadline: a class, so `cancel` is a method and not a closure per deadline (one lives per open stream). */
class Entry implements Deadline {
  prev: Entry | undefined = undefined;
  next: Entry | undefined = undefined;

  constructor(
    readonly at: number,
    public fire: (() => void) | undefined,
    readonly queue: Queue,
    readonly armed: Armed,
  ) {}

  cancel(): void {
    if (this.fire === undefined) return;
    this.fire = undefined;
    this.queue.unlink(this);
    // Nothing left to wait for: the timer stays for the next deadline (usually a moment away) instead of being
    // cleared and set again, but no longer keeps the process alive.
    if (--this.armed.count === 0) this.armed.timer?.unref();
  }
}

class Queue {
  head: Entry | undefined;
  tail: Entry | undefined;

  append(entry: Entry): void {
    entry.prev = this.tail;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
  }

  unlink(entry: Entry): void {
    if (entry.prev) entry.prev.next = entry.next;
    else if (this.head === entry) this.head = entry.next;
    else return; // not linked (already fired or cancelled)
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = undefined;
  }
}

export class Deadlines {
  readonly #queues = new Map<number, Queue>();
  readonly #now: () => number;
  #timerAt = Infinity;
  /** Deadlines armed, and the one timer for the earliest (shared with each entry's `cancel`). */
  readonly #armed: Armed = { count: 0, timer: undefined };

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Calls `fire` once `ms` milliseconds from now unless cancelled first. */
  after(ms: number, fire: () => void): Deadline {
    const duration = Math.max(0, Math.round(ms));
    let queue = this.#queues.get(duration);
    if (!queue) {
      queue = new Queue();
      this.#queues.set(duration, queue);
    }
    const armed = this.#armed;
    const entry = new Entry(this.#now() + duration, fire, queue, armed);
    queue.append(entry);
    if (entry.at < this.#timerAt) this.#arm(entry.at);
    else if (armed.count === 0) armed.timer!.ref();
    armed.count++;
    return entry;
  }

  /** How many deadlines are armed. */
  get pending(): number {
    return this.#armed.count;
  }

  /** Whether the shared timer keeps the process alive (it does only while a deadline is pending). */
  get holdsProcess(): boolean {
    return this.#armed.timer !== undefined && this.#armed.count > 0;
  }

  #arm(at: number): void {
    this.#disarm();
    this.#timerAt = at;
    // Timers overflow past 2^31 - 1 ms (and would fire at once): a longer deadline is re-armed when this one ends.
    this.#armed.timer = startTimer(
      Math.min(Math.max(0, at - this.#now()), MAX_TIMER_MS),
      () => this.#expire(),
    );
  }

  #disarm(): void {
    this.#armed.timer?.cancel();
    this.#armed.timer = undefined;
    this.#timerAt = Infinity;
  }

  #expire(): void {
    this.#armed.timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    let next = Infinity;
    const due: Entry[] = [];
    for (const [duration, queue] of this.#queues) {
      let head = queue.head;
      while (head && head.at <= now) {
        queue.unlink(head);
        due.push(head);
        head = queue.head;
      }
      if (head) next = Math.min(next, head.at);
      else this.#queues.delete(duration);
    }
    if (next !== Infinity) this.#arm(next);
    // From several queues when the timer ran late (a busy process): fire them in the order they fell due.
    if (due.length > 1) due.sort(byDueTime);
    for (const entry of due) {
      // Checked at the call: an earlier callback of this batch may have cancelled it.
      const fire = entry.fire;
      if (fire === undefined) continue;
      entry.fire = undefined;
      this.#armed.count--;
      try {
        fire();
      } catch (error) {
        // One failing callback must not keep the others of its batch from firing.
        reportError(error);
      }
    }
  }
}

const byDueTime = (a: Entry, b: Entry) => a.at - b.at;

/** The process-wide deadlines. */
export const deadlines = new Deadlines();
