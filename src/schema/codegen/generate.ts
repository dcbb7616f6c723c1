/**
 * Code generation: a checked {@link SchemaModel} to TypeScript files (pure; the caller writes
 * them). Output (`GeneratedFile[]`):
 *
 * - `types.ts`: a type per schema type (enums as literal unions plus `XxxValues` const arrays),
 *   `QmpCommandMap`, `QmpEventMap`, the `QmpEvent` union, command and event name lists.
 * - `validators.ts`: validators generated ahead of time (no schema interpretation at run time),
 *   `validators`, `commandValidators`, `eventValidators`.
 * - `schema-data.ts`: the model without its prose, for version queries and introspection.
 * - `index.ts`: re-exports, and `qemuSchema`, the version queries bound to the model.
 *
 * @module
 */
import { unreachable } from "../../base/unreachable.js";
import {
  type Definition,
  emptyObjectName,
  type EventDef,
  type CommandDef,
  type Member,
  SchemaIndex,
  type SchemaModel,
  jsonCategories,
  type TypeRef,
} from "../model.js";
import { GeneratedFile } from "./printer.js";

/** Options of {@link generateTypeScript}. */
export interface GenerateOptions {
  /** The schema the model came from, for headers (e.g. `schema/qapi/qapi-schema.json`). */
  readonly source: string;
  /**
   * How generated code imports qmpkit's runtime: `relative` paths into `src/` (the project's
   * own output in `src/generated/`), or the `qmpkit/…` package subpaths (users' output).
   * Default `relative`.
   */
  readonly runtimeImport?: "relative" | "package" | undefined;
  /** With `relative` imports: the path from the output directory to `src/`. Default `../`. */
  readonly relativePrefix?: string | undefined;
  /** How to make the files again, for their headers. Default: run `npm run gen`. */
  readonly regenerate?: string | undefined;
  /** What `types.ts` describes, for its module documentation. */
  readonly description?: string | undefined;
}

const builtinTs: Record<string, string> = {
  str: "string",
  number: "number",
  int: "number",
  int8: "number",
  int16: "number",
  int32: "number",
  int64: "number",
  uint8: "number",
  uint16: "number",
  uint32: "number",
  uint64: "number",
  size: "number",
  bool: "boolean",
  null: "null",
  any: "JsonValue",
};

const builtinValidator: Record<string, string> = {
  str: "vStr",
  number: "vNumber",
  int: "vInt64",
  int8: "vInt8",
  int16: "vInt16",
  int32: "vInt32",
  int64: "vInt64",
  uint8: "vUint8",
  uint16: "vUint16",
  uint32: "vUint32",
  uint64: "vUint64",
  size: "vUint64",
  bool: "vBool",
  null: "vNull",
  any: "vAny",
};

const jsGlobals = new Set([
  "String",
  "Number",
  "Boolean",
  "Object",
  "Array",
  "Symbol",
  "BigInt",
  "Function",
  "Error",
  "Map",
  "Set",
  "Date",
  "Promise",
  "Record",
  "Partial",
  "Required",
  "Readonly",
  "Uint8Array",
  "JSON",
]);

/** `BLOCK_IO_ERROR` → `BlockIoError`, `query-status` → `QueryStatus`. */
export function pascalCase(name: string): string {
  return name
    .split(/[-_.]+/)
    .filter((p) => p !== "")
    .map((p) =>
      p === p.toUpperCase()
        ? p.charAt(0) + p.slice(1).toLowerCase()
        : p.charAt(0).toUpperCase() + p.slice(1),
    )
    .join("");
}

function identifier(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_$]/g, "_");
  return /^[0-9]/.test(s) ? `T${s}` : s;
}

/** A property key: bare when it is an identifier, quoted otherwise. */
function propKey(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

/** Generate all files for `model`. */
export function generateTypeScript(model: SchemaModel, options: GenerateOptions): GeneratedFile[] {
  return new Emitter(model, options).run();
}

class Emitter {
  private readonly index: SchemaIndex;
  private readonly tsNames = new Map<string, string>();
  private readonly fnNames = new Map<string, string>();
  private readonly base: string;
  /** Validator functions some code refers to (the others are not emitted). */
  private readonly usedValidators = new Set<string>();

  constructor(
    private readonly model: SchemaModel,
    private readonly options: GenerateOptions,
  ) {
    this.index = new SchemaIndex(model);
    this.base = options.relativePrefix ?? "../";
    const used = new Set<string>();
    const events = new Set(model.definitions.filter((d) => d.kind === "event").map((d) => d.name));
    for (const d of model.definitions) {
      if (d.kind === "command" || d.kind === "event" || d.kind === "builtin") continue;
      let ts = this.preferredName(d.name, events);
      while (used.has(ts)) ts = `${ts}_`;
      used.add(ts);
      this.tsNames.set(d.name, ts);
    }
    const fnUsed = new Set<string>();
    for (const d of model.definitions) {
      let fn = identifier(d.name);
      while (fnUsed.has(fn)) fn = `${fn}_`;
      fnUsed.add(fn);
      this.fnNames.set(d.name, fn);
    }
  }

  private preferredName(name: string, events: Set<string>): string {
    const m = /^q_obj_(.*)-(arg|base|wrapper|ret)$/.exec(name);
    if (m) {
      const owner = m[1]!;
      switch (m[2]) {
        case "arg":
          return pascalCase(owner) + (events.has(owner) ? "EventData" : "Arguments");
        case "base":
          return `${pascalCase(owner)}Base`;
        case "wrapper":
          return `${pascalCase(owner)}Wrapper`;
        default:
          return `${pascalCase(owner)}Result`;
      }
    }
    const id = identifier(name);
    // A schema type named like a JavaScript global (QEMU has `String`) would shadow it.
    return jsGlobals.has(id) ? `Qapi${id}` : id;
  }

  private file(name: string): GeneratedFile {
    return this.options.regenerate === undefined
      ? new GeneratedFile(name, this.options.source)
      : new GeneratedFile(name, this.options.source, this.options.regenerate);
  }

  private mod(path: string): string {
    return this.options.runtimeImport === "package"
      ? `qmpkit/${path.split("/")[0]}`
      : `${this.base}${path}.js`;
  }

  run(): GeneratedFile[] {
    return [this.types(), this.validators(), this.data(), this.indexFile()];
  }

  // ---- types.ts ----------------------------------------------------------------------------

  private tsType(ref: TypeRef, f: GeneratedFile): string {
    let t: string;
    const b = builtinTs[ref.name];
    if (b !== undefined) {
      t = b;
      if (b === "JsonValue") f.import("JsonValue", this.mod("base/json"), true);
    } else if (ref.name === emptyObjectName) t = "Record<string, never>";
    else t = this.tsNames.get(ref.name) ?? identifier(ref.name);
    return ref.array ? (/^[A-Za-z0-9_$]+$/.test(t) ? `${t}[]` : `(${t})[]`) : t;
  }

  private docLines(
    d: {
      doc?: string | undefined;
      since?: string | undefined;
      removed?: string | undefined;
      optionalSince?: string | undefined;
      shapeOf?: string | undefined;
      features?: readonly { name: string }[] | undefined;
      sections?: readonly { tag: string; text: string }[] | undefined;
    },
    where?: string | undefined,
  ): string[] {
    const lines: string[] = [];
    const para = (text: string) => lines.push(...(lines.length > 0 ? ["", text] : [text]));
    if (d.doc) para(d.doc);
    // Notes and error descriptions read as prose; replies and examples get their JSDoc tags.
    for (const s of d.sections ?? []) {
      if (s.tag === "Note" || s.tag === "Notes" || s.tag === "Errors")
        para(`${s.tag === "Errors" ? "Errors" : "Note"}: ${s.text}`);
    }
    if (d.removed) para(`Removed in QEMU ${d.removed}.`);
    // The types follow the newest release; these say what older releases did instead.
    if (d.optionalSince)
      para(`Optional since QEMU ${d.optionalSince}; releases before require it.`);
    if (d.shapeOf)
      para(
        `What \`${d.shapeOf}\` is in the releases that have this type; the command and event maps use the newest \`${d.shapeOf}\`.`,
      );
    if (where) para(where);
    if (d.since) lines.push(`@since ${d.since}`);
    for (const s of d.sections ?? []) {
      if (s.tag === "Returns") lines.push(`@returns ${s.text}`);
    }
    for (const s of d.sections ?? []) {
      if (s.tag === "Example" || s.tag === "Examples")
        lines.push("@example", "```", ...s.text.split("\n"), "```");
    }
    // QEMU's special features map onto the editor-visible tags.
    const features = new Set((d.features ?? []).map((f) => f.name));
    if (features.has("deprecated"))
      lines.push("@deprecated QEMU marks this deprecated (feature `deprecated`).");
    if (features.has("unstable"))
      lines.push("@experimental QEMU marks this unstable (feature `unstable`).");
    return lines;
  }

  private where(d: Definition): string | undefined {
    if (d.info.file === "<builtin>") return "Built into QAPI.";
    // A model read from a query-qmp-schema answer has no file to point at.
    if (d.info.file === "<introspection>") return undefined;
    return `Defined in \`${d.info.file}:${d.info.line}\`${d.implicit ? " (implicit)" : ""}.`;
  }

  private members(f: GeneratedFile, members: readonly Member[]): void {
    for (const m of members) {
      f.jsDoc(this.docLines(m), "  ");
      const t = this.tsType(m.type, f);
      f.print(
        "  ",
        propKey(m.name),
        m.optional ? "?: " : ": ",
        t,
        m.optional ? " | undefined" : "",
        ";",
      );
    }
  }

  private types(): GeneratedFile {
    const f = this.file("types.ts");
    f.jsDoc([
      this.options.description ??
        "Types of every QAPI definition in the schema, command and event maps.",
      "@module",
    ]);
    f.print("");
    for (const d of this.model.definitions) {
      if (d.kind === "builtin" || d.name === emptyObjectName) continue;
      const ts = this.tsNames.get(d.name);
      switch (d.kind) {
        case "enum": {
          f.jsDoc(this.docLines(d, this.where(d)));
          const values = d.values.map((v) => JSON.stringify(v.name));
          f.print(
            "export type ",
            ts!,
            " = ",
            values.length === 0 ? "never" : values.join(" | "),
            ";",
          );
          f.jsDoc([`Every value of {@link ${ts}}, in schema order.`]);
          f.print("export const ", ts!, "Values = [", values.join(", "), "] as const;");
          f.print("");
          break;
        }
        case "struct": {
          f.jsDoc(this.docLines(d, this.where(d)));
          const ext = d.base !== undefined ? ` extends ${this.tsNames.get(d.base)}` : "";
          if (d.members.length === 0 && !ext) {
            f.print("export type ", ts!, " = Record<string, never>;");
          } else {
            f.print("export interface ", ts!, ext, " {");
            this.members(f, d.members);
            f.print("}");
          }
          f.print("");
          break;
        }
        case "union": {
          f.jsDoc(this.docLines(d, this.where(d)));
          const baseTs = this.tsNames.get(d.base)!;
          const tag = this.index.objectMembers(d.base).find((m) => m.name === d.discriminator)!;
          const tagEnum = this.index.type(tag.type.name);
          const values = tagEnum.kind === "enum" ? tagEnum.values.map((v) => v.name) : [];
          const arms = values.map((v) => {
            const br = d.branches.find((b) => b.name === v);
            const narrowed = `${baseTs} & { ${propKey(d.discriminator)}: ${JSON.stringify(v)} }`;
            return br ? `(${narrowed} & ${this.tsType(br.type, f)})` : `(${narrowed})`;
          });
          f.print("export type ", ts!, " =");
          for (const [i, a] of arms.entries()) f.print("  | ", a, i === arms.length - 1 ? ";" : "");
          if (arms.length === 0) f.print("  never;");
          f.print("");
          break;
        }
        case "alternate": {
          f.jsDoc(this.docLines(d, this.where(d)));
          f.print(
            "export type ",
            ts!,
            " = ",
            d.branches.map((b) => this.tsType(b.type, f)).join(" | "),
            ";",
          );
          f.print("");
          break;
        }
        case "command":
        case "event":
          break;
        default:
          unreachable(d);
      }
    }
    const commands = this.model.definitions.filter((d): d is CommandDef => d.kind === "command");
    const events = this.model.definitions.filter((d): d is EventDef => d.kind === "event");
    f.jsDoc(["Command name → argument and return types."]);
    f.print("export interface QmpCommandMap {");
    for (const c of commands) {
      f.jsDoc(this.docLines(c, this.where(c)), "  ");
      const args =
        c.args === undefined
          ? "Record<string, never>"
          : this.tsType({ name: c.args, array: false }, f);
      const ret = c.returns === undefined ? "Record<string, never>" : this.tsType(c.returns, f);
      f.print("  ", JSON.stringify(c.name), ": { args: ", args, "; returns: ", ret, " };");
    }
    f.print("}");
    f.print("");
    f.jsDoc(["Event name → event data type (`undefined` for events without data)."]);
    f.print("export interface QmpEventMap {");
    for (const e of events) {
      f.jsDoc(this.docLines(e, this.where(e)), "  ");
      const data =
        e.data === undefined ? "undefined" : this.tsType({ name: e.data, array: false }, f);
      f.print("  ", propKey(e.name), ": ", data, ";");
    }
    f.print("}");
    f.print("");
    f.jsDoc([
      "When QEMU emitted an event (`qemu_clock_get_ns(QEMU_CLOCK_HOST)` split into seconds and microseconds).",
    ]);
    f.print("export interface QmpTimestamp {");
    f.print("  seconds: number;");
    f.print("  microseconds: number;");
    f.print("}");
    f.print("");
    f.jsDoc(["One event message as it arrives, for the event named `K`."]);
    f.print(
      "export type QmpEventMessage<K extends keyof QmpEventMap> = [QmpEventMap[K]] extends [undefined]",
    );
    f.print("  ? { event: K; data?: undefined; timestamp: QmpTimestamp }");
    f.print("  : { event: K; data: QmpEventMap[K]; timestamp: QmpTimestamp };");
    f.print("");
    f.jsDoc(["Every event, as a union discriminated on `event`."]);
    f.print(
      "export type QmpEvent = { [K in keyof QmpEventMap]: QmpEventMessage<K> }[keyof QmpEventMap];",
    );
    f.print("");
    f.jsDoc(["The name of every command in the schema, in schema order."]);
    f.print(
      "export const qmpCommandNames = [",
      commands.map((c) => JSON.stringify(c.name)).join(", "),
      "] as const satisfies readonly (keyof QmpCommandMap)[];",
    );
    f.jsDoc(["The name of every event in the schema, in schema order."]);
    f.print(
      "export const qmpEventNames = [",
      events.map((c) => JSON.stringify(c.name)).join(", "),
      "] as const satisfies readonly (keyof QmpEventMap)[];",
    );
    return f;
  }

  // ---- validators.ts -------------------------------------------------------------------------

  private vRef(ref: TypeRef, f: GeneratedFile, lists: Map<string, string>): string {
    const el = this.vName(ref.name, f);
    if (!ref.array) return el;
    let l = lists.get(ref.name);
    if (l === undefined) {
      l = `l_${this.fnNames.get(ref.name)}`;
      lists.set(ref.name, l);
    }
    return l;
  }

  private vName(name: string, f: GeneratedFile): string {
    const b = builtinValidator[name];
    if (b !== undefined) return f.import(b, this.mod("schema/runtime"));
    const v = `v_${this.fnNames.get(name)}`;
    this.usedValidators.add(v);
    return v;
  }

  private validators(): GeneratedFile {
    const f = this.file("validators.ts");
    const rt = (n: string) => f.import(n, this.mod("schema/runtime"));
    f.jsDoc([
      "Validators for every type, command and event, generated ahead of time.",
      "Issues come in QEMU's input-visitor order (see `src/schema/runtime.ts`).",
      "@module",
    ]);
    f.print("");
    f.import("ValidationIssue", this.mod("base/errors"), true);
    f.print("type Issues = ValidationIssue[];");
    f.print("type Obj = Record<string, unknown>;");
    f.print("");
    const lists = new Map<string, string>();
    const body = new GeneratedFile("", "");
    for (const d of this.model.definitions) {
      const fn = this.fnNames.get(d.name)!;
      switch (d.kind) {
        case "struct": {
          const all = this.index.objectMembers(d.name);
          body.print(
            "const K_",
            fn,
            " = new Set<string>([",
            all.map((m) => JSON.stringify(m.name)).join(", "),
            "]);",
          );
          const none = d.base === undefined && d.members.length === 0;
          body.print(
            "function m_",
            fn,
            none
              ? "(_o: Obj, _p: string, _is: Issues): void {"
              : "(o: Obj, p: string, is: Issues): void {",
          );
          if (d.base !== undefined) body.print("  m_", this.fnNames.get(d.base)!, "(o, p, is);");
          if (d.members.length > 0) body.print("  let x: unknown;");
          for (const m of d.members) {
            const key = JSON.stringify(m.name);
            body.print("  x = o[", key, "];");
            const v = this.vRef(m.type, f, lists);
            if (m.optional) body.print("  if (x !== undefined) ", v, "(x, p, ", key, ", is);");
            else
              body.print(
                "  if (x === undefined) is.push(",
                rt("missingIssue"),
                "(p, ",
                key,
                ")); else ",
                v,
                "(x, p, ",
                key,
                ", is);",
              );
          }
          body.print("}");
          body.print("function k_", fn, "(k: string, _o: Obj): boolean {");
          body.print("  return K_", fn, ".has(k);");
          body.print("}");
          this.objectValidator(body, fn, rt);
          break;
        }
        case "union": {
          const baseFn = this.fnNames.get(d.base)!;
          const tag = JSON.stringify(d.discriminator);
          body.print("function m_", fn, "(o: Obj, p: string, is: Issues): void {");
          body.print("  m_", baseFn, "(o, p, is);");
          if (d.branches.length > 0) {
            body.print("  switch (o[", tag, "]) {");
            for (const br of d.branches) {
              body.print("    case ", JSON.stringify(br.name), ":");
              body.print("      m_", this.fnNames.get(br.type.name)!, "(o, p, is);");
              body.print("      break;");
            }
            body.print("  }");
          }
          body.print("}");
          body.print("function k_", fn, "(k: string, o: Obj): boolean {");
          body.print("  if (k_", baseFn, "(k, o)) return true;");
          if (d.branches.length > 0) {
            body.print("  switch (o[", tag, "]) {");
            for (const br of d.branches) {
              body.print("    case ", JSON.stringify(br.name), ":");
              body.print("      return k_", this.fnNames.get(br.type.name)!, "(k, o);");
            }
            body.print("  }");
          }
          body.print("  return false;");
          body.print("}");
          this.objectValidator(body, fn, rt);
          break;
        }
        case "alternate": {
          body.print(`//@needs v_${fn}`);
          body.print(
            "function v_",
            fn,
            "(v: unknown, p: string, n: string | number | undefined, is: Issues): void {",
          );
          body.print("  switch (", rt("qtypeOf"), "(v)) {");
          for (const br of d.branches) {
            for (const cat of jsonCategories(this.index.type(br.type.name), br.type.array)) {
              body.print("    case ", JSON.stringify(cat), ":");
              body.print("      ", this.vRef(br.type, f, lists), "(v, p, n, is);");
              body.print("      return;");
            }
          }
          body.print("  }");
          body.print("  is.push(", rt("typeIssue"), "(p, n, ", JSON.stringify(d.name), ", v));");
          body.print("}");
          body.print("//@end");
          break;
        }
        case "enum":
        case "builtin":
        case "command":
        case "event":
          break;
        default:
          unreachable(d);
      }
      if (d.kind === "struct" || d.kind === "union" || d.kind === "alternate") body.print("");
    }
    const tail = new GeneratedFile("", "");
    // Exports last: they reference the constants above.
    const create = rt("createValidator");
    f.import("Validator", this.mod("schema/validator"), true);
    tail.jsDoc(["A validator for every named type."]);
    tail.print("export const validators = {");
    for (const d of this.model.definitions) {
      if (d.kind === "command" || d.kind === "event" || d.kind === "builtin" || d.implicit)
        continue;
      const ts = this.tsNames.get(d.name)!;
      f.import(ts, "./types.js", true);
      const v = this.vName(d.name, f);
      tail.print(
        "  ",
        propKey(d.name),
        ": ",
        create,
        "<",
        ts,
        ">(",
        JSON.stringify(d.name),
        ", ",
        v,
        "),",
      );
    }
    tail.print("} as const;");
    tail.print("");
    f.import("QmpCommandMap", "./types.js", true);
    f.import("QmpEventMap", "./types.js", true);
    tail.jsDoc([
      "Validators of every command's arguments and reply. Absent arguments count as `{}`, as in QEMU.",
    ]);
    tail.print("export const commandValidators: {");
    tail.print("  readonly [K in keyof QmpCommandMap]: {");
    tail.print('    readonly args: Validator<QmpCommandMap[K]["args"]>;');
    tail.print('    readonly returns: Validator<QmpCommandMap[K]["returns"]>;');
    tail.print("  };");
    tail.print("} = {");
    for (const c of this.model.definitions) {
      if (c.kind !== "command") continue;
      const a = this.vRef({ name: c.args ?? emptyObjectName, array: false }, f, lists);
      const r = this.vRef(c.returns ?? { name: emptyObjectName, array: false }, f, lists);
      const n = JSON.stringify(c.name);
      tail.print("  ", n, ": {");
      tail.print(
        "    args: ",
        create,
        "(",
        n,
        ", ",
        a,
        ", { absentAsEmpty: true, subject: ",
        JSON.stringify(`arguments of ${c.name}`),
        " }),",
      );
      tail.print(
        "    returns: ",
        create,
        "(",
        n,
        ", ",
        r,
        ", { subject: ",
        JSON.stringify(`reply of ${c.name}`),
        " }),",
      );
      tail.print("  },");
    }
    tail.print("};");
    tail.print("");
    tail.jsDoc([
      "Validators of every event's `data` (absent data is valid for events that have none).",
    ]);
    tail.print(
      "export const eventValidators: { readonly [K in keyof QmpEventMap]: Validator<QmpEventMap[K]> } = {",
    );
    for (const e of this.model.definitions) {
      if (e.kind !== "event") continue;
      const n = JSON.stringify(e.name);
      const subject = JSON.stringify(`${e.name} data`);
      if (e.data === undefined) {
        const v = this.vName(emptyObjectName, f);
        tail.print(
          "  ",
          propKey(e.name),
          ": ",
          create,
          "(",
          n,
          ", ",
          v,
          ", { absentOk: true, subject: ",
          subject,
          " }),",
        );
      } else {
        tail.print(
          "  ",
          propKey(e.name),
          ": ",
          create,
          "(",
          n,
          ", ",
          this.vRef({ name: e.data, array: false }, f, lists),
          ", { subject: ",
          subject,
          " }),",
        );
      }
    }
    tail.print("};");
    // Now that every reference is known: the used object validators, the list validators, the exports.
    const listLines = [...lists].map(
      ([name, l]) => `const ${l} = ${rt("vList")}(${this.vName(name, f)});`,
    );
    // Enums first: they are constants that list validators use at module initialisation.
    for (const d of this.model.definitions) {
      const v = `v_${this.fnNames.get(d.name)}`;
      if (d.kind !== "enum" || !this.usedValidators.has(v)) continue;
      const values = f.import(`${this.tsNames.get(d.name)}Values`, "./types.js");
      f.print("const ", v, " = ", rt("vEnum"), "(", values, ");");
    }
    f.print("");
    let skipping = false;
    for (const line of body.bodyLines()) {
      const needs = /^\/\/@needs (\S+)$/.exec(line);
      if (needs) {
        skipping = !this.usedValidators.has(needs[1]!);
        continue;
      }
      if (line === "//@end") {
        skipping = false;
        continue;
      }
      if (!skipping) f.print(line);
    }
    for (const l of listLines) f.print(l);
    f.print("");
    for (const line of tail.bodyLines()) f.print(line);
    return f;
  }

  private objectValidator(body: GeneratedFile, fn: string, rt: (n: string) => string): void {
    body.print(`//@needs v_${fn}`);
    body.print(
      "function v_",
      fn,
      "(v: unknown, p: string, n: string | number | undefined, is: Issues): void {",
    );
    body.print("  if (!", rt("isObject"), "(v)) {");
    body.print("    is.push(", rt("typeIssue"), '(p, n, "object", v));');
    body.print("    return;");
    body.print("  }");
    body.print("  const path = n === undefined ? p : ", rt("pathOf"), "(p, n);");
    body.print("  m_", fn, "(v, path, is);");
    body.print(
      "  for (const k in v) if (!k_",
      fn,
      "(k, v)) is.push(",
      rt("unexpectedIssue"),
      "(path, k));",
    );
    body.print("}");
    body.print("//@end");
  }

  // ---- schema-data.ts and index.ts -------------------------------------------------------------

  private data(): GeneratedFile {
    const f = this.file("schema-data.ts");
    f.jsDoc([
      "The checked schema model without its prose: what version queries and `query-qmp-schema`",
      "answers are computed from.",
      "@module",
    ]);
    f.import("SchemaModel", this.mod("schema/model"), true);
    f.print("");
    f.print("export const schemaModel: SchemaModel = {");
    f.print("  definitions: [");
    for (const d of this.model.definitions) {
      f.print("    ", JSON.stringify(stripProse(d)), ",");
    }
    f.print("  ],");
    // The module order: QEMU registers commands module by module (the simulator's
    // query-commands answer follows it), which the definition order alone does not tell.
    if (this.model.files !== undefined) f.print("  files: ", JSON.stringify(this.model.files), ",");
    f.print("};");
    return f;
  }

  private indexFile(): GeneratedFile {
    const f = this.file("index.ts");
    f.jsDoc(["Types, validators and version data generated from the QAPI schema.", "@module"]);
    f.print("");
    const create = f.import("createVersionQueries", this.mod("schema/version"));
    f.import("schemaModel", "./schema-data.js");
    f.print('export * from "./types.js";');
    f.print('export * from "./validators.js";');
    f.print("export { schemaModel };");
    f.print("");
    f.jsDoc([
      "What the schema says about a QEMU release: which commands, events and members it has,",
      'and its `query-qmp-schema` answer (`qemuSchema.introspect("7.2.0")`).',
    ]);
    f.print("export const qemuSchema = ", create, "(schemaModel);");
    return f;
  }
}

/** The model data kept at run time: no doc text, no include chains. */
function stripProse(d: Definition): unknown {
  return JSON.parse(
    JSON.stringify(d, (key, value) => {
      if (key === "doc" || key === "sections") return undefined;
      if (key === "includedFrom") return [];
      return value;
    }),
  );
}
