/**
 * What waiting on a signal needs of it: an `AbortSignal` is one, and so is the proxy's lighter upstream call signal
 * (`upstream/call_signal.ts`), which a coalesced flight hands to the upstream call. A type of the core, so the clock,
 * the balancer, the cache and the upstream client all take it without depending on each other.
 */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: "abort", listener: () => void): void;
  removeEventListener(type: "abort", listener: () => void): void;
}
