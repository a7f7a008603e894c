/**
 * Smooth weighted round-robin (the nginx algorithm). Over any window of `sum(weights)` picks, each candidate is
 * chosen exactly `weight` times, spread out as evenly as possible (3:1 gives A A B A, never A A A B bunched).
 */

export interface Weighted {
  readonly id: string;
  readonly weight: number;
}

export class SmoothWeighted {
  /** Running "current weight" per candidate id; candidates not offered in a pick keep their value. */
  readonly #current = new Map<string, number>();

  /** Picks one candidate (all weights > 0) and advances the rotation; undefined when there are none. */
  pick<T extends Weighted>(candidates: readonly T[]): T | undefined {
    if (candidates.length <= 1) return candidates[0];
    let best: T | undefined;
    let bestCurrent = -Infinity;
    let total = 0;
    for (const candidate of candidates) {
      const current = (this.#current.get(candidate.id) ?? 0) + candidate.weight;
      this.#current.set(candidate.id, current);
      total += candidate.weight;
      if (current > bestCurrent) {
        best = candidate;
        bestCurrent = current;
      }
    }
    this.#current.set(best!.id, bestCurrent - total);
    return best;
  }
}
