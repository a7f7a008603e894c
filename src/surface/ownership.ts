/**
 * Whose a file or batch is. An object belongs to the key that created it (by the key's name, like a Responses
 * object: issue 18's keys are one per team or application, so the key is the team). A client key reaches only its
 * own objects: any other id answers 404 as if it did not exist, and lists show only its own. Admin keys reach every
 * object (operators), and so does every caller when the proxy needs no key. Objects made when no key was needed
 * have no owner: admin keys (and keyless callers) reach them.
 */

import type { KeyPolicy } from "../keys/policy.ts";
import type { Holder } from "./affinity.ts";
import type { GroupAccess } from "./groups.ts";

/** A caller with a key, as ownership sees it; null stands for a caller when the proxy needs no key. */
export interface ObjectCaller extends GroupAccess {
  /** The key's name: what its objects are recorded under. */
  readonly name: string;
  /** An admin key: reaches every object, and its lists are not filtered. */
  readonly admin: boolean;
}

export function objectCaller(
  registry: { isAdmin(policy: KeyPolicy): boolean },
  key: KeyPolicy | undefined,
): ObjectCaller | null {
  if (!key) return null;
  return { name: key.name, admin: registry.isAdmin(key), allows: key.allows };
}

/** Whether the caller reaches only the objects it owns (a client key). */
export const ownOnly = (caller: ObjectCaller | null): caller is ObjectCaller =>
  caller !== null && !caller.admin;

/** Whether the caller may use an object held as `holder`. */
export function mayUse(holder: Holder, caller: ObjectCaller | null): boolean {
  return !ownOnly(caller) || holder.owner === caller.name;
}

/** The owner of an object the caller creates. */
export const ownerFor = (caller: ObjectCaller | null): string | null => caller?.name ?? null;
