/**
 * The names a client may send as `model`: each group's name and its `aliases`, resolved before routing. Exact
 * names first (group names, then aliases), then wildcard aliases in file order (`*` matches any run of
 * characters, `gpt-4o-*` answers `gpt-4o-2024-08-06`). An exact name costs one map lookup.
 */

import type { GroupConfig } from "../config/config.ts";

export class ModelNames {
  readonly #exact = new Map<string, GroupConfig>();
  readonly #patterns: { readonly pattern: RegExp; readonly group: GroupConfig }[] = [];
  readonly #listed: string[] = [];

  constructor(groups: readonly GroupConfig[]) {
    for (const group of groups) {
      this.#exact.set(group.name, group);
      this.#listed.push(group.name);
    }
    for (const group of groups) {
      for (const alias of group.aliases ?? []) {
        if (alias.includes("*")) this.#patterns.push({ pattern: wildcard(alias), group });
        else if (!this.#exact.has(alias)) {
          this.#exact.set(alias, group);
          if (group.listAliases) this.#listed.push(alias);
        }
      }
    }
  }

  /** The group a `model` value names, or undefined. */
  resolve(model: string): GroupConfig | undefined {
    const exact = this.#exact.get(model);
    if (exact) return exact;
    for (const { pattern, group } of this.#patterns) if (pattern.test(model)) return group;
    return undefined;
  }

  /** What `/v1/models` lists: group names, plus the aliases without wildcards of groups with `list_aliases`. */
  listed(): readonly string[] {
    return this.#listed;
  }
}

function wildcard(alias: string): RegExp {
  const parts = alias.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`, "s");
}
