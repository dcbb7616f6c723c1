/** Marks the end of an exhaustive `switch`: the compiler proves `value` is `never`. */
export function unreachable(value: never, what = "value"): never {
  throw new Error(`unreachable: unexpected ${what} ${JSON.stringify(value)}`);
}
