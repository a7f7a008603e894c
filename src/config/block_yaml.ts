/**
 * A reader for the plain block YAML that config files are almost always written in: nested mappings and `- `
 * lists, one-line `[a, "b"]` lists, plain, 'single' and "double" quoted scalars on one line, comments, blank lines.
 * It gives exactly what js-yaml's core schema gives (`yaml.ts`), or `undefined` for anything beyond that subset
 * (flow mappings, anchors, tags, block scalars, escapes, multi-line scalars, numbers in any but the plain decimal
 * forms, tabs, non-ASCII text, errors of any kind): the caller then reads the file with js-yaml, which also words
 * every syntax error.
 *
 * Why: with js-yaml loaded and run at start, V8 compiles some of it with its optimizing compiler at once; with the
 * config schema also free of zod, reading plain files here cuts the idle proxy's RSS by ~0.8 MiB (issue 22.4a,
 * bench/RESULTS.md session 11). Alone (zod still loaded) it reads no gain: zod keeps that compiler busy at start.
 */

/** A line with content: its indentation and the text after it. */
interface Line {
  readonly indent: number;
  readonly text: string;
}

/** Thrown inside the reader for anything outside the subset; never leaves this module. */
class Outside extends Error {}

const outside = (): never => {
  throw new Outside();
};

/** The document's value, or `undefined` when the text is outside the subset (read it with js-yaml). */
export function readBlockYaml(text: string): { value: unknown } | undefined {
  // Printable ASCII and newlines only: no tabs, CR, BOM or text whose escaping rules differ.
  if (/[^\n\x20-\x7e]/.test(text)) return undefined;
  const lines: Line[] = [];
  for (const raw of text.split("\n")) {
    const body = raw.trimStart();
    if (body === "" || body.startsWith("#")) continue;
    // Directives and document markers.
    if (/^(---|\.\.\.|%)/.test(raw)) return undefined;
    lines.push({ indent: raw.length - body.length, text: body.trimEnd() });
  }
  // An empty file is `undefined` to js-yaml, one of comments only `null`: the latter is left to it.
  if (lines.length === 0) return text.includes("#") ? undefined : { value: undefined };
  try {
    const reader = new Reader(lines);
    if (lines[0].indent !== 0) return undefined;
    const value = reader.node(0);
    return reader.at === lines.length ? { value } : undefined;
  } catch (error) {
    if (error instanceof Outside) return undefined;
    throw error;
  }
}

/**
 * Mappings and lists nested deeper than this are left to js-yaml, which refuses 100 levels and more (its `maxDepth`):
 * then the reader never reads a file js-yaml refuses, and its recursion stays far from the stack's limit.
 */
const MAX_DEPTH = 50;

const KEY = /^([A-Za-z_][\w./-]*):(?: +(.*))?$/;
const isItem = (text: string) => text === "-" || text.startsWith("- ");

class Reader {
  at = 0;
  /** Mappings and lists open around the current line. */
  depth = 0;
  constructor(private readonly lines: Line[]) {}

  /** The block that starts at the current line, indented `indent`. */
  node(indent: number): unknown {
    const line = this.lines[this.at];
    if (line.indent !== indent) outside();
    return isItem(line.text) ? this.sequence(indent) : this.mapping(indent, line.text);
  }

  /** A mapping whose keys sit at `indent`; `first` is the text of its first line. */
  mapping(indent: number, first: string): Record<string, unknown> {
    if (++this.depth > MAX_DEPTH) outside();
    const out: Record<string, unknown> = {};
    let text: string | undefined = first;
    while (text !== undefined) {
      const match: RegExpExecArray = KEY.exec(text) ?? outside();
      const key = match[1];
      // js-yaml resolves a key like a value (`True:` is the key "true"): only keys that stay strings are read here.
      if (Object.hasOwn(out, key) || key === "__proto__" || NULLS.has(key) || BOOLEANS.has(key)) outside();
      this.at++;
      out[key] = this.value(match[2], indent, true);
      const next: Line | undefined = this.lines[this.at];
      text = next?.indent === indent && !isItem(next.text) ? next.text : undefined;
    }
    this.depth--;
    return out;
  }

  /** A list whose `- ` marks sit at `indent`. */
  sequence(indent: number): unknown[] {
    if (++this.depth > MAX_DEPTH) outside();
    const out: unknown[] = [];
    for (
      let line = this.lines[this.at];
      line?.indent === indent && isItem(line.text);
      line = this.lines[this.at]
    ) {
      const after = line.text.slice(1).trimStart();
      if (after !== "" && KEY.test(after)) {
        // `- key: value`: a mapping whose keys line up with this first one.
        const column = indent + line.text.length - after.length;
        out.push(this.mapping(column, after));
        continue;
      }
      this.at++;
      out.push(this.value(after === "" ? undefined : after, indent, false));
    }
    this.depth--;
    return out;
  }

  /**
   * What follows `key:` or `- ` on its line (`rest`), or, when nothing does, the block below: more indented, or for
   * a key also a list at the key's own indentation.
   */
  value(rest: string | undefined, indent: number, key: boolean): unknown {
    const next = this.lines[this.at];
    if (rest === undefined || rest.startsWith("#")) {
      if (next === undefined) return null;
      if (next.indent < indent) {
        // An empty item, then an outer list's item: js-yaml puts that item into this list.
        return key || !isItem(next.text) ? null : outside();
      }
      if (next.indent > indent) return this.node(next.indent);
      return key && isItem(next.text) ? this.sequence(indent) : null;
    }
    // A more indented line below would continue the scalar: no block takes it, so the document is left unread.
    return scalar(rest);
  }
}

/** One scalar or `[flow, list]` on one line, with its comment if any, resolved as js-yaml's core schema does. */
function scalar(rest: string): unknown {
  if (rest[0] === "[") return flowList(rest);
  const quote = rest[0];
  if (quote === '"' || quote === "'") {
    const [value, end] = quoted(rest, 0);
    return commentOnly(rest.slice(end)) ? value : outside();
  }
  // Flow mappings, anchors, aliases, tags, block scalars, reserved indicators, a nested `- `.
  if (/^([\]{}&*!|>%@`?,:]|-( |$))/.test(rest)) outside();
  const comment = rest.indexOf(" #");
  const plain = (comment < 0 ? rest : rest.slice(0, comment)).trimEnd();
  if (plain.includes(": ") || plain.endsWith(":")) outside();
  return resolvePlain(plain);
}

/** `[a, "b", 3]` on one line: scalars only, no empty entries. */
function flowList(rest: string): unknown[] {
  const out: unknown[] = [];
  let i = 1;
  const skip = () => {
    while (rest[i] === " ") i++;
  };
  skip();
  if (rest[i] === "]") return commentOnly(rest.slice(i + 1)) ? out : outside();
  for (;;) {
    skip();
    if (rest[i] === '"' || rest[i] === "'") {
      const [value, end] = quoted(rest, i);
      out.push(value);
      i = end;
    } else {
      let end = i;
      while (end < rest.length && rest[end] !== "," && rest[end] !== "]") end++;
      const plain = end === rest.length ? outside() : rest.slice(i, end).trimEnd();
      // Nested collections, indicators, comments, colons and quotes inside are left to js-yaml.
      if (plain === "" || /[[\]{}#:'"]/.test(plain) || /^([&*!|>%@`?,]|-( |$))/.test(plain)) outside();
      out.push(resolvePlain(plain));
      i = end;
    }
    skip();
    if (rest[i] === "]") return commentOnly(rest.slice(i + 1)) ? out : outside();
    if (rest[i++] !== ",") outside();
  }
}

/** Nothing, or spaces and a comment. */
const commentOnly = (after: string) => after.trim() === "" || /^ +#/.test(after);

/**
 * The quoted scalar starting at `start` and the index after its closing quote: `''` in single quotes, no escapes in
 * double quotes, on one line.
 */
function quoted(text: string, start: number): [string, number] {
  const quote = text[start];
  let value = "";
  let i = start + 1;
  for (;;) {
    const end = text.indexOf(quote, i);
    if (end < 0) outside();
    value += text.slice(i, end);
    i = end + 1;
    if (quote !== "'" || text[i] !== "'") break;
    value += "'";
    i++;
  }
  return quote === '"' && value.includes("\\") ? outside() : [value, i];
}

const NULLS = new Set(["~", "null", "Null", "NULL"]);
const BOOLEANS = new Map([
  ["true", true],
  ["True", true],
  ["TRUE", true],
  ["false", false],
  ["False", false],
  ["FALSE", false],
]);
/** js-yaml's core schema float (which also matches its decimal integers). */
const FLOAT =
  /^(?:[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
/** The number forms read here; every other form of a number is left to js-yaml. */
const PLAIN_NUMBER = /^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?$/;

function resolvePlain(plain: string): unknown {
  if (NULLS.has(plain)) return null;
  const flag = BOOLEANS.get(plain);
  if (flag !== undefined) return flag;
  // Binary, octal and hex integers, anything a float might be, and digits with `_` or `:` (YAML 1.1's `1_000` and
  // `1:30`, numbers to some readers): js-yaml decides.
  if (/^[-+]?0[box]/.test(plain) || plain.startsWith(".") || plain === "<<") outside();
  if (/^[-+]?[0-9][0-9._:]*$/.test(plain) && /[_:]/.test(plain)) outside();
  if (!FLOAT.test(plain)) return plain;
  const number = PLAIN_NUMBER.test(plain) ? Number(plain) : outside();
  return Object.is(number, -0) ? outside() : number;
}
