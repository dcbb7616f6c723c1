/**
 * The runtime of generated validators: the check / errors / parse trio around a generated
 * function, and the checks for built-in types. Generated code (`src/generated/validators.ts`)
 * imports from here; everything marked `@private` exists for generated code only.
 *
 * Issues follow QEMU's input visitor (`qapi/qobject-input-visitor.c`, `qapi/qapi-visit-core.c`):
 * members in schema order, for each one missing / wrong JSON type / bad enum value / integer out
 * of range, and after an object's members the members it does not have. Paths are spelled as
 * the visitor's `full_name()` does: `a.b` for nested members, `a[0]` for list elements. QEMU stops
 * at the first problem; qmpkit lists them all, in the order QEMU would meet them.
 *
 * QEMU's messages name the full path for "missing", "unexpected" and "type" problems, but only
 * the member's own name (or `null` for a list element) for enum and range problems:
 * {@link qemuParameterName} gives that name.
 *
 * @module
 */
import { type ValidationIssue, ValidationError } from "../base/errors.js";
import type { ValidateOptions, Validator } from "./validator.js";

/**
 * A generated validation function: checks `value` found at member `name` of the object at
 * path `parent` (or at `parent` itself when `name` is undefined) and appends issues.
 * @private
 */
export type ValidateFn = (
  value: unknown,
  parent: string,
  name: string | number | undefined,
  issues: ValidationIssue[],
) => void;

/** The path of member `name` under `parent`, as QEMU's `full_name()` spells it. @private */
export function pathOf(parent: string, name: string | number | undefined): string {
  if (name === undefined) return parent;
  if (typeof name === "number") return `${parent}[${name}]`;
  return parent === "" ? name : `${parent}.${name}`;
}

/** The JSON type of a value in QEMU's words. @private */
export function jsonTypeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "bigint":
      return "integer";
    case "number":
      return Number.isInteger(value) ? "integer" : "number";
    case "object":
      return "object";
    case "undefined":
      return "nothing";
    default:
      return typeof value;
  }
}

/** @private */
export function typeIssue(
  parent: string,
  name: string | number | undefined,
  expected: string,
  value: unknown,
): ValidationIssue {
  return { kind: "type", path: pathOf(parent, name), expected, actual: jsonTypeOf(value) };
}

/** @private */
export function missingIssue(parent: string, name: string): ValidationIssue {
  return { kind: "missing", path: pathOf(parent, name) };
}

/** @private */
export function unexpectedIssue(parent: string, name: string): ValidationIssue {
  return { kind: "unexpected", path: pathOf(parent, name) };
}

/** The QType category of a JSON value, which picks an alternate's branch. @private */
export function qtypeOf(
  value: unknown,
): "string" | "number" | "boolean" | "null" | "object" | "array" | "none" {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
    case "bigint":
      return "number";
    case "boolean":
      return "boolean";
    case "object":
      return "object";
    default:
      return "none";
  }
}

/** @private */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** @private */
export const vStr: ValidateFn = (v, p, n, is) => {
  if (typeof v !== "string") is.push(typeIssue(p, n, "string", v));
};
/** @private */
export const vBool: ValidateFn = (v, p, n, is) => {
  if (typeof v !== "boolean") is.push(typeIssue(p, n, "boolean", v));
};
/** @private */
export const vNull: ValidateFn = (v, p, n, is) => {
  if (v !== null) is.push(typeIssue(p, n, "null", v));
};
/** `any`: every JSON value. @private */
export const vAny: ValidateFn = (v, p, n, is) => {
  if (v === undefined) is.push(typeIssue(p, n, "value", v));
};
/** `number`: QEMU accepts integers and floats. @private */
export const vNumber: ValidateFn = (v, p, n, is) => {
  if (typeof v !== "number" && typeof v !== "bigint") is.push(typeIssue(p, n, "number", v));
};

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const uint64Max = 2n ** 64n - 1n;

/** `int`/`int64`: integers that fit int64; anything else is a type error (`expected: integer`). @private */
export const vInt64: ValidateFn = (v, p, n, is) => {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return;
    if (Number.isInteger(v) && BigInt(v) >= int64Min && BigInt(v) <= int64Max) return;
  } else if (typeof v === "bigint" && v >= int64Min && v <= int64Max) return;
  is.push(typeIssue(p, n, "integer", v));
};

/**
 * `uint64`/`size` (and the first step of `uint8`…`uint32`): QEMU accepts any integer from
 * int64's minimum to uint64's maximum (negative values are taken modulo 2^64 for backward
 * compatibility). Anything else, a string as much as a too large number, is reported as
 * `Parameter 'a.b' expects uint64` (`qobject_input_type_uint64`): a `type` issue with
 * `expected: "uint64"` for a value that is no integer, a `range` issue for one out of range.
 * @private
 */
export const vUint64: ValidateFn = (v, p, n, is) => {
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return;
    if (Number.isInteger(v) && BigInt(v) >= int64Min && BigInt(v) <= uint64Max) return;
    if (Number.isInteger(v)) {
      is.push({ kind: "range", path: pathOf(p, n), value: v, expected: "uint64" });
      return;
    }
  } else if (typeof v === "bigint") {
    if (v >= int64Min && v <= uint64Max) return;
    is.push({ kind: "range", path: pathOf(p, n), value: v, expected: "uint64" });
    return;
  }
  is.push(typeIssue(p, n, "uint64", v));
};

/**
 * A sized integer (`int8` … `uint32`): the JSON type first, then the range, reported as QEMU's
 * `Parameter 'x' expects uint8_t` (`visit_type_intN` / `visit_type_uintN`).
 * @private
 */
export function vSized(min: number, max: number, cName: string, unsigned: boolean): ValidateFn {
  return (v, p, n, is) => {
    const before = is.length;
    (unsigned ? vUint64 : vInt64)(v, p, n, is);
    if (is.length !== before) return;
    const num = typeof v === "bigint" ? v : BigInt(v as number);
    // A negative value seen as uint64 wraps to a huge one, so it is out of range too.
    if (num < BigInt(min) || num > BigInt(max)) {
      is.push({ kind: "range", path: pathOf(p, n), value: v as number | bigint, expected: cName });
    }
  };
}

/** @private */
export const vInt8 = vSized(-128, 127, "int8_t", false);
/** @private */
export const vInt16 = vSized(-32768, 32767, "int16_t", false);
/** @private */
export const vInt32 = vSized(-2147483648, 2147483647, "int32_t", false);
/** @private */
export const vUint8 = vSized(0, 255, "uint8_t", true);
/** @private */
export const vUint16 = vSized(0, 65535, "uint16_t", true);
/** @private */
export const vUint32 = vSized(0, 4294967295, "uint32_t", true);

/** An enum check. @private */
export function vEnum(values: readonly string[]): ValidateFn {
  const set = new Set(values);
  return (v, p, n, is) => {
    if (typeof v !== "string") is.push(typeIssue(p, n, "string", v));
    else if (!set.has(v)) is.push({ kind: "enum", path: pathOf(p, n), value: v, allowed: values });
  };
}

/** A list check: an array, then each element (paths `a[0]`, `a[1]`, …). @private */
export function vList(element: ValidateFn): ValidateFn {
  return (v, p, n, is) => {
    if (!Array.isArray(v)) {
      is.push(typeIssue(p, n, "array", v));
      return;
    }
    const path = pathOf(p, n);
    for (let i = 0; i < v.length; i++) element(v[i], path, i, is);
  };
}

/** Options of {@link createValidator}. @private */
export interface CreateValidatorOptions {
  /** Treat an absent value as `{}` (command arguments: QEMU does when `arguments` is missing). */
  readonly absentAsEmpty?: boolean | undefined;
  /** Accept an absent value (event data of events that have none). */
  readonly absentOk?: boolean | undefined;
  /** What a `ValidationError` says was validated (default: the name). */
  readonly subject?: string | undefined;
}

function blocking(
  issues: readonly ValidationIssue[],
  options: ValidateOptions | undefined,
): boolean {
  if (options?.mode === "lenient") return issues.some((i) => i.kind !== "unexpected");
  return issues.length > 0;
}

/** Wrap a generated function into the {@link Validator} trio. @private */
export function createValidator<T>(
  name: string,
  fn: ValidateFn,
  options: CreateValidatorOptions = {},
): Validator<T> {
  const run = (value: unknown): ValidationIssue[] => {
    const issues: ValidationIssue[] = [];
    if (value === undefined && options.absentAsEmpty) fn({}, "", undefined, issues);
    else if (value === undefined && options.absentOk) return issues;
    else fn(value, "", undefined, issues);
    return issues;
  };
  return {
    name,
    check(value: unknown, opts?: ValidateOptions): value is T {
      return !blocking(run(value), opts);
    },
    errors(value: unknown): ValidationIssue[] {
      return run(value);
    },
    parse(value: unknown, opts?: ValidateOptions): T {
      const issues = run(value);
      if (blocking(issues, opts)) {
        const shown =
          opts?.mode === "lenient" ? issues.filter((i) => i.kind !== "unexpected") : issues;
        throw new ValidationError(options.subject ?? name, shown);
      }
      return value as T;
    },
  };
}

/**
 * The name QEMU puts in `Parameter '%s' does not accept value …` and `Parameter '%s' expects …`:
 * the member's own name, or `null` for a list element (`visit_type_enum`, `visit_type_intN`).
 */
export function qemuParameterName(issue: ValidationIssue): string {
  const path = issue.path;
  if (path.endsWith("]")) return "null";
  const dot = path.lastIndexOf(".");
  return dot < 0 ? path : path.slice(dot + 1);
}

const jsonWords = new Set([
  "string",
  "integer",
  "boolean",
  "number",
  "object",
  "array",
  "null",
  "value",
]);

/**
 * The `desc` QEMU's input visitor puts in its `GenericError` for this issue (QEMU 7.2 to 10.x):
 * `Parameter 'a.b' is missing`, `Parameter 'x' is unexpected`,
 * `Invalid parameter type for 'a.b', expected: string`, `Parameter 'x' does not accept value 'v'`,
 * `Parameter 'x' expects uint8_t`. QEMU reports only the first problem it meets, which is the
 * first issue of a validator's list.
 */
export function qemuIssueMessage(issue: ValidationIssue): string {
  switch (issue.kind) {
    case "missing":
      return `Parameter '${issue.path}' is missing`;
    case "unexpected":
      return `Parameter '${issue.path}' is unexpected`;
    case "type":
      // uint64 reports a wrong type as a bad value (`qobject_input_type_uint64`).
      if (issue.expected === "uint64") return `Parameter '${issue.path}' expects uint64`;
      // An alternate's mismatch names the alternate type and only the member's own name.
      return jsonWords.has(issue.expected)
        ? `Invalid parameter type for '${issue.path}', expected: ${issue.expected}`
        : `Invalid parameter type for '${qemuParameterName(issue)}', expected: ${issue.expected}`;
    case "enum":
      return `Parameter '${qemuParameterName(issue)}' does not accept value '${issue.value}'`;
    case "range":
      // uint64's own check names the full path; the sized checks only the member's name.
      return issue.expected === "uint64"
        ? `Parameter '${issue.path}' expects uint64`
        : `Parameter '${qemuParameterName(issue)}' expects ${issue.expected}`;
    case "variant":
      return issue.message;
  }
}
