/**
 * Validators built at run time from a model: for a schema known only when the program runs,
 * typically a live peer's `query-qmp-schema` turned into a model by `modelFromIntrospection`
 * ("validate against the exact QEMU you talk to").
 *
 * The schema is walked once, when a validator is first asked for, into closures over the same
 * runtime checks the generated validators use (`runtime.ts`), so issues are identical in kind,
 * path and order to the generated ones; checking a value interprets no schema.
 *
 * @module
 */
import type { ValidationIssue } from "../base/errors.js";
import { emptyObjectName } from "./check.js";
import { SchemaIndex, type SchemaModel, type TypeRef } from "./model.js";
import {
  createValidator,
  isObject,
  missingIssue,
  pathOf,
  qtypeOf,
  typeIssue,
  unexpectedIssue,
  type ValidateFn,
  vAny,
  vBool,
  vEnum,
  vInt8,
  vInt16,
  vInt32,
  vInt64,
  vList,
  vNull,
  vNumber,
  vStr,
  vUint8,
  vUint16,
  vUint32,
  vUint64,
} from "./runtime.js";
import type { Validator } from "./validator.js";

const builtins: Readonly<Record<string, ValidateFn>> = {
  str: vStr,
  number: vNumber,
  int: vInt64,
  int8: vInt8,
  int16: vInt16,
  int32: vInt32,
  int64: vInt64,
  uint8: vUint8,
  uint16: vUint16,
  uint32: vUint32,
  uint64: vUint64,
  size: vUint64,
  bool: vBool,
  null: vNull,
  any: vAny,
};

/** Validators for the types, commands and events of one model. */
export interface SchemaValidators {
  /** A named type's validator, or undefined when the model has no such type. */
  type(name: string): Validator<unknown> | undefined;
  /** A command's argument validator (absent arguments count as `{}`), or undefined. */
  commandArgs(name: string): Validator<unknown> | undefined;
  /** A command's reply validator, or undefined. */
  commandReturns(name: string): Validator<unknown> | undefined;
  /** An event's data validator (absent data is valid for events without data), or undefined. */
  event(name: string): Validator<unknown> | undefined;
}

type MembersFn = (o: Record<string, unknown>, p: string, is: ValidationIssue[]) => void;
type KnownFn = (k: string, o: Record<string, unknown>) => boolean;

/** Build validators for `model` (see the module doc). */
export function compileValidators(model: SchemaModel): SchemaValidators {
  const index = new SchemaIndex(model);
  const fns = new Map<string, ValidateFn>();
  const members = new Map<string, MembersFn>();
  const known = new Map<string, KnownFn>();

  // Lookups go through these indirections so that recursive types compile lazily.
  const validateFn = (name: string): ValidateFn => {
    const b = builtins[name];
    if (b !== undefined) return b;
    let fn = fns.get(name);
    if (fn === undefined) {
      let real: ValidateFn | undefined;
      fn = (v, p, n, is) => {
        real ??= compileType(name);
        real(v, p, n, is);
      };
      fns.set(name, fn);
    }
    return fn;
  };
  const refFn = (ref: TypeRef): ValidateFn =>
    ref.array ? vList(validateFn(ref.name)) : validateFn(ref.name);
  const membersFn = (name: string): MembersFn => {
    let fn = members.get(name);
    if (fn === undefined) {
      let real: MembersFn | undefined;
      fn = (o, p, is) => {
        real ??= compileMembers(name);
        real(o, p, is);
      };
      members.set(name, fn);
    }
    return fn;
  };
  const knownFn = (name: string): KnownFn => {
    let fn = known.get(name);
    if (fn === undefined) {
      let real: KnownFn | undefined;
      fn = (k, o) => {
        real ??= compileKnown(name);
        return real(k, o);
      };
      known.set(name, fn);
    }
    return fn;
  };

  function compileMembers(name: string): MembersFn {
    const t = index.type(name);
    if (t.kind === "union") {
      const base = membersFn(t.base);
      const branches = new Map(t.branches.map((b) => [b.name, membersFn(b.type.name)]));
      return (o, p, is) => {
        base(o, p, is);
        const tag = o[t.discriminator];
        if (typeof tag === "string") branches.get(tag)?.(o, p, is);
      };
    }
    if (t.kind !== "struct") return () => {};
    const base = t.base !== undefined ? membersFn(t.base) : undefined;
    const own = t.members.map((m) => ({ name: m.name, optional: m.optional, fn: refFn(m.type) }));
    return (o, p, is) => {
      base?.(o, p, is);
      for (const m of own) {
        const x = o[m.name];
        if (x === undefined) {
          if (!m.optional) is.push(missingIssue(p, m.name));
        } else m.fn(x, p, m.name, is);
      }
    };
  }

  function compileKnown(name: string): KnownFn {
    const t = index.type(name);
    if (t.kind === "union") {
      const base = knownFn(t.base);
      const branches = new Map(t.branches.map((b) => [b.name, knownFn(b.type.name)]));
      return (k, o) => {
        if (base(k, o)) return true;
        const tag = o[t.discriminator];
        return typeof tag === "string" && (branches.get(tag)?.(k, o) ?? false);
      };
    }
    const set = new Set(index.objectMembers(name).map((m) => m.name));
    return (k) => set.has(k);
  }

  function compileType(name: string): ValidateFn {
    const t = index.type(name);
    switch (t.kind) {
      case "builtin":
        return builtins[t.name] ?? vAny;
      case "enum":
        return vEnum(t.values.map((v) => v.name));
      case "struct":
      case "union": {
        const m = membersFn(name);
        const k = knownFn(name);
        return (v, p, n, is) => {
          if (!isObject(v)) {
            is.push(typeIssue(p, n, "object", v));
            return;
          }
          const path = n === undefined ? p : pathOf(p, n);
          m(v, path, is);
          for (const key in v) if (!k(key, v)) is.push(unexpectedIssue(path, key));
        };
      }
      case "alternate": {
        const byCategory = new Map<string, ValidateFn>();
        for (const b of t.branches) {
          const fn = refFn(b.type);
          for (const cat of categories(index, b.type))
            if (!byCategory.has(cat)) byCategory.set(cat, fn);
        }
        return (v, p, n, is) => {
          const fn = byCategory.get(qtypeOf(v));
          if (fn) fn(v, p, n, is);
          else is.push(typeIssue(p, n, name, v));
        };
      }
    }
  }

  const cache = new Map<string, Validator<unknown> | undefined>();
  const memo = (key: string, make: () => Validator<unknown> | undefined) => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key);
  };
  const isType = (name: string) => {
    const d = index.get(name);
    return d !== undefined && d.kind !== "command" && d.kind !== "event";
  };
  return {
    type: (name) =>
      memo(`t:${name}`, () => (isType(name) ? createValidator(name, validateFn(name)) : undefined)),
    commandArgs: (name) =>
      memo(`a:${name}`, () => {
        const c = index.get(name);
        if (c?.kind !== "command") return undefined;
        return createValidator(name, validateFn(c.args ?? emptyObjectName), {
          absentAsEmpty: true,
          subject: `arguments of ${name}`,
        });
      }),
    commandReturns: (name) =>
      memo(`r:${name}`, () => {
        const c = index.get(name);
        if (c?.kind !== "command") return undefined;
        return createValidator(name, refFn(c.returns ?? { name: emptyObjectName, array: false }), {
          subject: `reply of ${name}`,
        });
      }),
    event: (name) =>
      memo(`e:${name}`, () => {
        const e = index.get(name);
        if (e?.kind !== "event") return undefined;
        return createValidator(name, validateFn(e.data ?? emptyObjectName), {
          absentOk: e.data === undefined,
          subject: `${name} data`,
        });
      }),
  };
}

/** The JSON categories an alternate branch takes (as the generated code switches on them). */
function categories(index: SchemaIndex, ref: TypeRef): string[] {
  if (ref.array) return ["array"];
  const t = index.type(ref.name);
  switch (t.kind) {
    case "builtin":
      return t.jsonType === "int"
        ? ["number"]
        : t.jsonType === "value"
          ? ["string", "number", "boolean", "null", "object", "array"]
          : [t.jsonType];
    case "enum":
      return ["string"];
    case "struct":
    case "union":
      return ["object"];
    case "alternate":
      return [];
  }
}
