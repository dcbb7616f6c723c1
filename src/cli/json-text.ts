/**
 * JSON text for the command line's output: `JSON.stringify` with integers beyond 2^53 (carried as
 * `bigint`, see `src/base/json.ts`) written exactly, compact or indented.
 *
 * @module
 */

/** Writes `value` as JSON; `indent` as for `JSON.stringify`. Bigints keep every digit. */
export function stringifyJson(value: unknown, indent?: number | undefined): string {
  const bigints: string[] = [];
  const text = JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v !== "bigint") return v;
      bigints.push(v.toString());
      return `\u0000bigint${bigints.length - 1}\u0000`;
    },
    indent,
  );
  if (bigints.length === 0) return text;
  return text.replace(/"\\u0000bigint(\d+)\\u0000"/g, (_m, i: string) => bigints[Number(i)]!);
}
