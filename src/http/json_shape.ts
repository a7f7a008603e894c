/**
 * What JSON.parse accepts but the proxy cannot pass on faithfully: nesting deeper than `MAX_JSON_DEPTH` (the cache
 * key and re-serialisation recurse: 5,000 levels overflowed the stack) and numbers out of range (`1e999` parses to
 * Infinity, which would be forwarded as `null`). Walked with an explicit stack, so the check itself cannot
 * overflow; each problem is a 400 naming where it is. Every body is walked once with nothing but the stack (no
 * object per value: this runs on every request); only a body with a problem is walked again, keeping the path to
 * each value, to name the first problem.
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
  if (hasProblem(root)) throwFirstProblem(root);
}

/** Whether any number is out of range or any array or object nested too deep. */
function hasProblem(root: object): boolean {
  const values: object[] = [root];
  const depths: number[] = [1];
  while (values.length > 0) {
    const value = values.pop()!;
    const depth = depths.pop()!;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) if (isProblem(value[i], depth, values, depths)) return true;
    } else {
      for (const key in value) {
        if (isProblem((value as Record<string, unknown>)[key], depth, values, depths)) return true;
      }
    }
  }
  return false;
}

/** A problem in itself; an array or object below `depth` is queued to be looked into. */
function isProblem(item: unknown, depth: number, values: object[], depths: number[]): boolean {
  if (typeof item === "number") return !Number.isFinite(item);
  if (typeof item !== "object" || item === null) return false;
  if (depth >= MAX_JSON_DEPTH) return true;
  values.push(item);
  depths.push(depth + 1);
  return false;
}

/** Throws the first problem met by a walk that keeps where each value is (for the message). */
function throwFirstProblem(root: object): void {
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
