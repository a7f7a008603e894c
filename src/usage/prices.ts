/**
 * USD of an answer from the `prices:` table (USD per million tokens). The model priced is the one the upstream
 * says answered (Azure answers name the model behind a deployment, `gpt-4o-2024-08-06`), then the endpoint's
 * `model` (for Azure the deployment name), then the model group. Each is tried as written, then without a
 * trailing date (`-2024-08-06`). No match: USD 0.
 */

import type { Price } from "../keys/config.ts";
import type { UsageFigures } from "./figures.ts";

const DATE_SUFFIX = /-\d{4}-\d{2}-\d{2}$/;

/** The price that applies, or undefined when none of the names is in the table. */
export function priceFor(
  prices: ReadonlyMap<string, Price>,
  names: readonly (string | undefined)[],
): Price | undefined {
  if (prices.size === 0) return undefined;
  for (const name of names) {
    if (name === undefined) continue;
    const price = prices.get(name) ?? prices.get(name.replace(DATE_SUFFIX, ""));
    if (price) return price;
  }
  return undefined;
}

/** USD of the figures at `price`: uncached input, cached input and output, each per million tokens. */
export function costOf(price: Price | undefined, figures: UsageFigures): number {
  if (!price) return 0;
  const uncached = Math.max(0, figures.input - figures.cachedInput);
  return (uncached * price.input + figures.cachedInput * price.cachedInput + figures.output * price.output) /
    1_000_000;
}
