/**
 * The proxy's timers, on the runtime's own timer queue (issue 22.4a, idle RSS).
 *
 * Deno 2.9's global `setTimeout` and `setInterval` are Node's (`node:timers`), loaded on first use: the first call
 * loads about twenty of Node's compatibility modules (errors, inspect, validators, async_hooks, ...). An idle
 * proxy held 1.7 MiB more for that (an empty `Deno.serve` server 3 MiB). Both those globals and the web timers sit
 * on one timer queue in the runtime's core, reachable as `Deno[Deno.internal].core` (as `serve/server.ts` reaches
 * `serveHttpOnConnection`): the proxy arms its timers there directly. Where that queue is not reachable (another
 * runtime version), the globals do the same.
 *
 * A callback runs in no request's async context (one timer here serves many requests). One that throws is
 * reported as uncaught, as with the globals.
 */

export interface Timer {
  /** Stops it; safe to call more than once and after it fired. */
  cancel(): void;
  /** Keeps the process alive while it is pending (the default). */
  ref(): void;
  /** Lets the process end while it is pending. */
  unref(): void;
}

export interface TimerOptions {
  /** Fire every `ms` until cancelled, instead of once. */
  readonly repeat?: boolean;
  /** False: does not keep the process alive. Default true. */
  readonly ref?: boolean;
}

/** The runtime core's timer queue (deno_core `02_timers.js`); a handle is the core's timer object. */
interface CoreTimers {
  createTimer(fire: () => void, ms: number, args: undefined, repeat: boolean, ref: boolean): object;
  cancelTimer(timer: object): void;
  refTimer(timer: object): void;
  unrefTimer(timer: object): void;
}

const deno = Deno as unknown as {
  internal?: symbol;
  [key: symbol]: { core?: Partial<CoreTimers> } | undefined;
};
const found = deno.internal ? deno[deno.internal]?.core : undefined;
const core: CoreTimers | undefined = typeof found?.createTimer === "function" &&
    typeof found.cancelTimer === "function" && typeof found.refTimer === "function" &&
    typeof found.unrefTimer === "function"
  ? found as CoreTimers
  : undefined;

/** The longest delay the runtime's timers take (about 24.8 days); they fire a longer one after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` after `ms` milliseconds (every `ms` with `repeat`) until cancelled. A delay past `MAX_TIMER_MS`
 * (a `shutdown_timeout` of a month, meaning "wait") waits `MAX_TIMER_MS`, not the runtime's 1 ms.
 */
export function startTimer(ms: number, fire: () => void, options: TimerOptions = {}): Timer {
  const { repeat = false, ref = true } = options;
  const delay = ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
  return core ? new CoreTimer(core, delay, fire, repeat, ref) : new GlobalTimer(delay, fire, repeat, ref);
}

/** Resolves after `ms` milliseconds; the wait keeps the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => startTimer(ms, resolve));
}

/** A core timer: once it has fired (or been cancelled) the core ignores cancel, ref and unref on it. */
class CoreTimer implements Timer {
  readonly #core: CoreTimers;
  readonly #timer: object;

  constructor(core: CoreTimers, ms: number, fire: () => void, repeat: boolean, ref: boolean) {
    this.#core = core;
    this.#timer = core.createTimer(fire, ms, undefined, repeat, ref);
  }

  cancel(): void {
    this.#core.cancelTimer(this.#timer);
  }

  ref(): void {
    this.#core.refTimer(this.#timer);
  }

  unref(): void {
    this.#core.unrefTimer(this.#timer);
  }
}

class GlobalTimer implements Timer {
  readonly #id: ReturnType<typeof setTimeout>;
  readonly #repeat: boolean;

  constructor(ms: number, fire: () => void, repeat: boolean, ref: boolean) {
    this.#repeat = repeat;
    this.#id = repeat ? setInterval(fire, ms) : setTimeout(fire, ms);
    if (!ref) Deno.unrefTimer(this.#id);
  }

  cancel(): void {
    if (this.#repeat) clearInterval(this.#id);
    else clearTimeout(this.#id);
  }

  ref(): void {
    Deno.refTimer(this.#id);
  }

  unref(): void {
    Deno.unrefTimer(this.#id);
  }
}
