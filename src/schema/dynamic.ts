/**
 * Validators built at run time from a model: the runtime front end of the one validator engine
 * whose ahead-of-time front end is the code generator (`codegen/generate.ts`). It serves every
 * schema known only when the program runs: a live peer's `query-qmp-schema` turned into a model
 * by `modelFromIntrospection` (the client's `validators: "peer"`, "validate against the exact
 * QEMU you talk to"), and the simulator's per-release models.
 *
 * Each type is compiled once, when a validator first needs it, into closures shaped like the
 * generated functions (`v_`, `m_`, `k_`: value, members, known keys) over the same runtime checks
 * (`runtime.ts`), and alternates pick their branch by the same `jsonCategories` (model.ts); so
 * issues are identical in kind, path, order and wording to the generated ones, and checking a
 * value interprets no schema. (Evaluating the generator's own output with `new Function` would be
 * faster still, but would turn a peer's answer into code.)
 *
 * @module
 */
import type { ValidationIssue } from "../base/errors.js";
import {
  emptyObjectName,
  jsonCategories,
  SchemaIndex,
  type SchemaModel,
  type TypeRef,
} from "./model.js";
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

/**
 * `build` memoised by name. A name asked for again while its own function is being built (a
 * recursive type) gets a forwarder to the finished function; every other caller gets the built
 * function itself, so checking a value calls the same chain of functions the generated code
 * does, with no lookup on the way.
 */
function once<F extends (...args: never[]) => unknown>(
  build: (name: string) => F,
): (name: string) => F {
  const built = new Map<string, F>();
  const building = new Set<string>();
  return (name) => {
    const done = built.get(name);
    if (done !== undefined) return done;
    if (building.has(name)) {
      return ((...args: Parameters<F>) => built.get(name)!(...args)) as unknown as F;
    }
    building.add(name);
    const fn = build(name);
    building.delete(name);
    built.set(name, fn);
    return fn;
  };
}

/** Build validators for `model` (see the module doc). */
export function compileValidators(model: SchemaModel): SchemaValidators {
  const index = new SchemaIndex(model);
  // Each type is compiled once, with everything it reaches, the first time a validator needs
  // it; only a recursive reference goes through a forwarder (see `once`).
  const validateFn = once((name): ValidateFn => builtins[name] ?? compileType(name));
  const refFn = (ref: TypeRef): ValidateFn =>
    ref.array ? vList(validateFn(ref.name)) : validateFn(ref.name);
  const membersFn = once(compileMembers);
  const knownFn = once(compileKnown);

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
          for (const cat of jsonCategories(index.type(b.type.name), b.type.array))
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
