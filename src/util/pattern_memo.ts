/**
 * `pattern.test`, remembering up to `bound` texts that passed. For header names, which come from a short list (the
 * config, the code, the upstreams' answers): each is checked by the pattern once, then found in a set.
 */
export function rememberedTest(pattern: RegExp, bound = 1024): (text: string) => boolean {
  const passed = new Set<string>();
  return (text) => {
    if (passed.has(text)) return true;
    if (!pattern.test(text)) return false;
    if (passed.size < bound) passed.add(text);
    return true;
  };
}
