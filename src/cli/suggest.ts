/**
 * "Did you mean …?" for a name the peer does not know: the candidates closest to it by edit
 * distance (a typo, a `_` for a `-`), nearest first.
 *
 * @module
 */

/**
 * Edit distance with transpositions (optimal string alignment: `stauts` is one step from
 * `status`), with `_` and `-` counted as the same letter (QMP names use both).
 */
export function editDistance(a: string, b: string): number {
  const x = a.replace(/_/g, "-");
  const y = b.replace(/_/g, "-");
  const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) =>
    Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[x.length]![y.length]!;
}

/**
 * Up to `most` candidates within a quarter of the word's length (at least 2) of it, nearest
 * first, then by name. Empty when nothing is close.
 */
export function closestNames(word: string, candidates: Iterable<string>, most = 3): string[] {
  const limit = Math.max(2, Math.floor(word.length / 4));
  return [...new Set(candidates)]
    .map((name) => ({ name, d: editDistance(word, name) }))
    .filter((c) => c.d <= limit && c.name !== word)
    .sort((p, q) => p.d - q.d || p.name.localeCompare(q.name))
    .slice(0, most)
    .map((c) => c.name);
}

/** ` (did you mean a or b?)`, or "" when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const close = closestNames(word, candidates);
  if (close.length === 0) return "";
  const list =
    close.length === 1 ? close[0]! : `${close.slice(0, -1).join(", ")} or ${close.at(-1)!}`;
  return ` (did you mean ${list}?)`;
}
