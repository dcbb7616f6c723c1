/**
 * Name patterns with `*` (any run of characters) and `?` (one character), everything else
 * literal: event names (`--only 'RTC_*'`), commands an agent allows (`query-*`), fleet VM
 * patterns (`web?/vm*`). Globs of file paths, where `*` stops at `/`, are the CLI's
 * (`targets.ts`).
 *
 * @module
 */

/** The anchored regular expression of a wildcard pattern (`flags`: `"i"` to ignore case). */
export function wildcardRegExp(pattern: string, flags = ""): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, flags);
}
