/**
 * What JSON.parse accepts but the proxy cannot pass on faithfully: nesting deeper than `MAX_JSON_DEPTH` (the cache
 * key and re-serialisation recurse: 5,000 levels overflowed the stack) and numbers out of range (`1e999` parses to
 * Infinity, which would be forwarded as `null`). Walked with an explicit stack, so the check itself cannot
 * overflow; each problem is a 400 naming where it is. Paths are only built for the message.
 */

import { invalidJson } from "../errors.ts";

/** Deepest nesting of arrays and objects accepted in a request body. */
export const MAX_JSON_DEPTH = 128;

interface Frame {
  readonly value: object;
  readonly depth: number;
  readonly parent?: Frame;
  readonly key?: string | number;
}

export function checkJsonShape(root: unknown): void {
  if (typeof root !== "object" || root === null) return;
  const stack: Frame[] = [{ value: root, depth: 1 }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const { value, depth } = frame;
    const visit = (item: unknown, key: string | number) => {
      if (typeof item === "number") {
        if (!Number.isFinite(item)) {
          throw invalidJson(`Request body has a number out of range at '${pathOf(frame, key)}'`);
        }
      } else if (typeof item === "object" && item !== null) {
        if (depth >= MAX_JSON_DEPTH) {
          throw invalidJson(
            `Request body is nested more than ${MAX_JSON_DEPTH} levels deep (at '${pathOf(frame, key)}')`,
          );
        }
        stack.push({ value: item, depth: depth + 1, parent: frame, key });
      }
    };
    if (Array.isArray(value)) value.forEach(visit);
    else for (const key in value) visit((value as Record<string, unknown>)[key], key);
  }
}

function pathOf(frame: Frame, last: string | number): string {
  const keys: (string | number)[] = [last];
  for (let at: Frame | undefined = frame; at?.key !== undefined; at = at.parent) keys.push(at.key);
  const path = keys.reverse().map((key) => typeof key === "number" ? `[${key}]` : `.${key}`).join("");
  const shown = path.startsWith(".") ? path.slice(1) : path;
  return shown.length <= 120 ? shown : `${shown.slice(0, 60)}...${shown.slice(-60)}`;
}
