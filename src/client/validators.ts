/**
 * Where the client's reply and event validators come from:
 *
 * - {@link bundledValidators}: the generated ones (`src/generated`), from the project's schema;
 * - {@link validatorsFromIntrospection}: built at run time from the peer's own
 *   `query-qmp-schema` answer (DESIGN.md principle 3: "the client can check messages against
 *   the peer's own query-qmp-schema"), so a QEMU newer or older than the bundled schema is
 *   checked against what it says it speaks.
 *
 * Introspection (`qapi/introspect.json`): every entity is a `SchemaInfo` with a `meta-type`;
 * type names other than commands' and events' are masked as numbers; an optional member carries
 * `default: null`; a union is an object with `tag` and `variants` (case → object type whose
 * members join the base's). The checks follow QEMU's input visitor: members in order, each
 * missing / wrong type / bad enum value, then the members the type does not have. Paths are
 * spelled `a.b` and `a[0]` as QEMU does.
 *
 * @module
 */
import { ProtocolError, type ValidationIssue, ValidationError } from "../base/errors.js";
import { isJsonObject } from "../base/json.js";
import { commandValidators, eventValidators } from "../generated/index.js";
import type { SchemaInfo, SchemaInfoObject } from "../schema/index.js";
import { jsonTypeOf, pathOf, qtypeOf, typeIssue } from "../schema/runtime.js";
import type { ValidateOptions, Validator } from "../schema/validator.js";
import type { QmpValidators } from "./options.js";

/** The generated validators of every command's reply and every event's data. */
export const bundledValidators: QmpValidators = {
  returns(command) {
    const table = commandValidators as Record<string, { readonly returns: Validator<unknown> }>;
    return Object.hasOwn(table, command) ? table[command]!.returns : undefined;
  },
  event(name) {
    const table = eventValidators as Record<string, Validator<unknown>>;
    return Object.hasOwn(table, name) ? table[name] : undefined;
  },
};

type Check = (
  value: unknown,
  parent: string,
  name: string | number | undefined,
  issues: ValidationIssue[],
) => void;

const anyCheck: Check = () => {};

function builtinCheck(jsonType: string): Check {
  switch (jsonType) {
    case "string":
      return (v, p, n, is) => {
        if (typeof v !== "string") is.push(typeIssue(p, n, "string", v));
      };
    case "int":
      return (v, p, n, is) => {
        if (!(typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v)))) {
          is.push(typeIssue(p, n, "integer", v));
        }
      };
    case "number":
      return (v, p, n, is) => {
        if (typeof v !== "number" && typeof v !== "bigint") is.push(typeIssue(p, n, "number", v));
      };
    case "boolean":
      return (v, p, n, is) => {
        if (typeof v !== "boolean") is.push(typeIssue(p, n, "boolean", v));
      };
    case "null":
      return (v, p, n, is) => {
        if (v !== null) is.push(typeIssue(p, n, "null", v));
      };
    case "object":
      return (v, p, n, is) => {
        if (!isJsonObject(v)) is.push(typeIssue(p, n, "object", v));
      };
    case "array":
      return (v, p, n, is) => {
        if (!Array.isArray(v)) is.push(typeIssue(p, n, "array", v));
      };
    default: // "value": any JSON value
      return anyCheck;
  }
}

function wrap(name: string, subject: string, check: Check, absentOk: boolean): Validator<unknown> {
  const run = (value: unknown): ValidationIssue[] => {
    const issues: ValidationIssue[] = [];
    if (!(value === undefined && absentOk)) check(value, "", undefined, issues);
    return issues;
  };
  const blocking = (issues: ValidationIssue[], options?: ValidateOptions) =>
    options?.mode === "lenient" ? issues.filter((i) => i.kind !== "unexpected") : issues;
  return {
    name,
    check: (value, options): value is unknown => blocking(run(value), options).length === 0,
    errors: (value) => run(value),
    parse(value, options) {
      const issues = blocking(run(value), options);
      if (issues.length > 0) throw new ValidationError(subject, issues);
      return value;
    },
  };
}

/**
 * Validators built from a peer's `query-qmp-schema` answer.
 * @throws ProtocolError when the answer is not a list of `SchemaInfo` objects.
 */
export function validatorsFromIntrospection(reply: unknown): QmpValidators {
  if (
    !Array.isArray(reply) ||
    !reply.every(
      (e) => isJsonObject(e) && typeof e.name === "string" && typeof e["meta-type"] === "string",
    )
  ) {
    throw new ProtocolError(
      "invalid query-qmp-schema reply: expected a list of SchemaInfo objects",
      reply,
    );
  }
  const infos = reply as SchemaInfo[];
  const types = new Map<string, SchemaInfo>();
  const commands = new Map<string, string>();
  const events = new Map<string, string>();
  for (const info of infos) {
    if (info["meta-type"] === "command") commands.set(info.name, info["ret-type"]);
    else if (info["meta-type"] === "event") events.set(info.name, info["arg-type"]);
    else types.set(info.name, info);
  }

  const compiled = new Map<string, Check>();
  const checkOf = (typeName: string): Check => {
    const done = compiled.get(typeName);
    if (done !== undefined) return done;
    // Recursive types: a forwarder stands in while the real check is built.
    let real: Check = anyCheck;
    compiled.set(typeName, (v, p, n, is) => real(v, p, n, is));
    real = build(types.get(typeName));
    compiled.set(typeName, real);
    return real;
  };

  /** Checks the members of `info` (and of the variant its tag picks) on `v`; collects their names. */
  const checkMembers = (
    info: SchemaInfoObject,
    v: Record<string, unknown>,
    path: string,
    issues: ValidationIssue[],
    known: Set<string>,
  ): void => {
    for (const member of info.members) {
      known.add(member.name);
      if (Object.hasOwn(v, member.name))
        checkOf(member.type)(v[member.name], path, member.name, issues);
      else if (!("default" in member))
        issues.push({ kind: "missing", path: pathOf(path, member.name) });
    }
    if (info.tag === undefined || info.variants === undefined) return;
    const tag = v[info.tag];
    const variant = info.variants.find((c) => c.case === tag);
    const branch = variant === undefined ? undefined : types.get(variant.type);
    if (branch !== undefined && branch["meta-type"] === "object") {
      checkMembers(branch, v, path, issues, known);
    }
  };

  const build = (info: SchemaInfo | undefined): Check => {
    // A name the answer does not define: nothing to check against (never guess).
    if (info === undefined) return anyCheck;
    switch (info["meta-type"]) {
      case "builtin":
        return builtinCheck(info["json-type"]);
      case "enum": {
        const values = new Set(info.values);
        return (v, p, n, is) => {
          if (typeof v !== "string") is.push(typeIssue(p, n, "string", v));
          else if (!values.has(v)) {
            is.push({ kind: "enum", path: pathOf(p, n), value: v, allowed: info.values });
          }
        };
      }
      case "array": {
        const element = info["element-type"];
        return (v, p, n, is) => {
          if (!Array.isArray(v)) {
            is.push(typeIssue(p, n, "array", v));
            return;
          }
          const path = pathOf(p, n);
          const check = checkOf(element);
          for (let i = 0; i < v.length; i++) check(v[i], path, i, is);
        };
      }
      case "object":
        return (v, p, n, is) => {
          if (!isJsonObject(v)) {
            is.push(typeIssue(p, n, "object", v));
            return;
          }
          const path = pathOf(p, n);
          const known = new Set<string>();
          checkMembers(info, v, path, is, known);
          for (const key of Object.keys(v)) {
            if (!known.has(key)) is.push({ kind: "unexpected", path: pathOf(path, key) });
          }
        };
      case "alternate":
        return (v, p, n, is) => {
          const kind = qtypeOf(v);
          for (const { type } of info.members) {
            const branch = types.get(type);
            if (branch !== undefined && branchKind(branch) === kind) {
              checkOf(type)(v, p, n, is);
              return;
            }
            if (branch?.["meta-type"] === "builtin" && branch["json-type"] === "value") return;
          }
          is.push({
            kind: "variant",
            path: pathOf(p, n),
            message: `no alternative of ${info.name} takes a JSON ${jsonTypeOf(v)}`,
          });
        };
      default:
        return anyCheck;
    }
  };

  const replies = new Map<string, Validator<unknown>>();
  const eventChecks = new Map<string, Validator<unknown>>();
  return {
    returns(command) {
      const ret = commands.get(command);
      if (ret === undefined) return undefined;
      let validator = replies.get(command);
      if (validator === undefined) {
        validator = wrap(command, `reply of ${command}`, checkOf(ret), false);
        replies.set(command, validator);
      }
      return validator;
    },
    event(name) {
      const arg = events.get(name);
      if (arg === undefined) return undefined;
      let validator = eventChecks.get(name);
      if (validator === undefined) {
        validator = wrap(name, `${name} data`, checkOf(arg), true);
        eventChecks.set(name, validator);
      }
      return validator;
    },
  };
}

/** The JSON kind a type accepts, for picking an alternate's branch. */
function branchKind(info: SchemaInfo): string | undefined {
  switch (info["meta-type"]) {
    case "builtin":
      switch (info["json-type"]) {
        case "int":
        case "number":
          return "number";
        case "value":
          return undefined;
        default:
          return info["json-type"];
      }
    case "enum":
      return "string";
    case "array":
      return "array";
    case "object":
      return "object";
    default:
      return undefined;
  }
}
