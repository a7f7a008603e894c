/**
 * Where a path of the config (`general_settings.bind_prot`, `model_groups[0].models[1].weight`) is written in the
 * file's text, for messages: found by indentation in block YAML, as users write configs. A path that goes into a
 * one-line `{...}` or `[...]` value gives that line. Run only when a message is built, never on a clean start.
 */

type Path = readonly PropertyKey[];

/** A line with content: its number (0-based), the column of its key or scalar (past any `- `), and that text. */
interface Content {
  readonly at: number;
  readonly indent: number;
  readonly column: number;
  readonly item: boolean;
  readonly body: string;
}

function contents(text: string): Content[] {
  const out: Content[] = [];
  text.split(/\r?\n/).forEach((raw, at) => {
    const trimmed = raw.trimStart();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const indent = raw.length - trimmed.length;
    const body = trimmed.replace(/^(-( +|$))+/, "");
    out.push({ at, indent, column: raw.length - body.length, item: trimmed.startsWith("-"), body });
  });
  return out;
}

const keyText = (key: string) =>
  new RegExp(`^(${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}|"${key}"|'${key}'):( |$)`);

/** The 1-based line of `path`'s deepest part found in `text`; undefined when not even the first is found. */
export function lineOf(text: string, path: Path): number | undefined {
  const lines = contents(text);
  let from = 0;
  let to = lines.length;
  let found: number | undefined;
  for (const part of path) {
    if (from >= to) break;
    if (typeof part === "number") {
      // The list's items: the lines starting with `-` at the range's shallowest indentation.
      const indent = lines[from].indent;
      const items = [];
      for (let i = from; i < to; i++) if (lines[i].indent === indent && lines[i].item) items.push(i);
      if (part >= items.length) break;
      from = items[part];
      to = part + 1 < items.length ? items[part + 1] : to;
      // The item's first line holds its first key (`- model: m`), at the column past its dash.
      found = lines[from].at;
      if (lines[from].body === "") from++;
      continue;
    }
    const column = lines[from].column;
    const key = keyText(String(part));
    let hit = -1;
    for (let i = from; i < to; i++) {
      const line = lines[i];
      const own = i === from || line.indent === column;
      if (own && line.column === column && key.test(line.body)) {
        hit = i;
        break;
      }
    }
    if (hit < 0) break;
    found = lines[hit].at;
    const value = lines[hit].body.slice(lines[hit].body.indexOf(":") + 1).trim();
    if (value !== "" && !value.startsWith("#")) break;
    // The value's lines: those below, deeper than the key or list items at the key's own indentation.
    const own = lines[hit].column;
    let end = hit + 1;
    while (end < to && (lines[end].indent > own || (lines[end].indent === own && lines[end].item))) end++;
    from = hit + 1;
    to = end;
  }
  return found === undefined ? undefined : found + 1;
}
