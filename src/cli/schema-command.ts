/**
 * `qmpkit schema …`: the schema toolchain from the command line.
 *
 * | command | what it does |
 * |---|---|
 * | `schema check FILE` | parse and check a QAPI schema file with its includes |
 * | `schema introspect [--qemu-version X.Y.Z]` | print the catalogue's `query-qmp-schema` answer |
 * | `schema gen --qapi-dir DIR \| --from-introspection FILE [--out DIR]` | emit TypeScript for a QEMU |
 *
 * Output goes through the program's configured output (`configureOutput`), so `main`'s streams
 * are used. Failures are thrown: a schema problem as the `SchemaError` itself
 * (`file:line:col: message`), which `main` prints as one line with exit status 1.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Command } from "commander";
import { isSchemaError, QmpError } from "../base/errors.js";
import type { JsonValue } from "../base/json.js";
import { qemuSchema } from "../generated/index.js";
import { generateTypeScript } from "../schema/codegen/generate.js";
import { introspect, modelFromIntrospection } from "../schema/introspect.js";
import { type LoadSchemaOptions, loadSchema } from "../schema/load.js";
import { formatSchemaError } from "../schema/source.js";
import type { SchemaModel } from "../schema/model.js";
import { readFileNode } from "../schema/read-file-node.js";
import { filterModel, parseQemuVersion } from "../schema/version.js";
import { UsageError } from "./usage-error.js";

/** The newest release the catalogue can describe, used when no version is asked for. */
const newestVersion = "999.0.0";

/** A file or directory the schema commands could not use. */
export class SchemaCommandError extends QmpError {
  override name = "SchemaCommandError";
}

interface Output {
  out(text: string): void;
}

function output(cmd: Command): Output {
  const config = cmd.configureOutput() as { writeOut?: (s: string) => void };
  return { out: (s) => (config.writeOut ? config.writeOut(s) : process.stdout.write(s)) };
}

/**
 * `loadSchema`, printing the include chain of a schema error first ("In file included from …",
 * as QEMU does); the error itself is rethrown for `main` to print as `file:line:col: message`.
 */
function load(cmd: Command, file: string, options: Omit<LoadSchemaOptions, "readFile"> = {}) {
  try {
    return loadSchema(file, { readFile: readFileNode, ...options });
  } catch (e) {
    if (isSchemaError(e) && e.includedFrom.length > 0) {
      const config = cmd.configureOutput() as { writeErr?: (s: string) => void };
      const chain = formatSchemaError(e).split("\n").slice(0, -1).join("\n");
      (config.writeErr ?? ((x: string) => process.stderr.write(x)))(`${chain}\n`);
    }
    throw e;
  }
}

/** Register `schema check`, `schema introspect` and `schema gen` on `program`. */
export function registerSchemaCommands(program: Command): Command {
  const schema = program
    .command("schema")
    .description(
      "the QAPI schema toolchain: check schema files, print introspection, generate TypeScript",
    );

  schema
    .command("check")
    .description("parse and check a QAPI schema file and everything it includes")
    .argument("<file>", "the schema file, e.g. qapi/qapi-schema.json")
    .option(
      "--strict",
      "apply QEMU's current naming and documentation rules whatever the schema's age",
    )
    .option(
      "--qemu-version <version>",
      "the file is QEMU's own schema of this release: apply that release's doc rules",
    )
    .action(function (
      this: Command,
      file: string,
      opts: { strict?: boolean; qemuVersion?: string },
    ) {
      const { model, parsed } = load(this, file, {
        ...(opts.qemuVersion !== undefined ? { qemuVersion: opts.qemuVersion } : {}),
        ...(opts.strict ? { naming: "strict" as const, memberDocs: "require" as const } : {}),
      });
      const count = (k: string) => model.definitions.filter((d) => d.kind === k).length;
      const types = model.definitions.filter(
        (d) => d.kind !== "command" && d.kind !== "event" && d.info.file !== "<builtin>",
      ).length;
      output(this).out(
        `${file}: ok (${parsed.files.length} files, ${count("command")} commands, ${count("event")} events, ${types} types)\n`,
      );
    });

  schema
    .command("introspect")
    .description("print the catalogue's query-qmp-schema answer (SchemaInfo JSON)")
    .option(
      "--qemu-version <version>",
      "as this QEMU release has it (X.Y or X.Y.Z); default: the newest",
    )
    .option("--schema <file>", "introspect this schema file instead of the built-in catalogue")
    .option("--unmask", "keep type names instead of QEMU's numbers")
    .action(function (
      this: Command,
      opts: { qemuVersion?: string; schema?: string; unmask?: boolean },
    ) {
      const version = opts.qemuVersion ?? newestVersion;
      try {
        parseQemuVersion(version);
      } catch (e) {
        throw new UsageError(
          `--qemu-version: invalid version '${version}' (expected X.Y or X.Y.Z)`,
          { cause: e },
        );
      }
      const model: SchemaModel = opts.schema ? load(this, opts.schema).model : qemuSchema.model;
      const infos = introspect(filterModel(model, version), {
        ...(opts.qemuVersion !== undefined ? { version } : {}),
        unmask: opts.unmask === true,
      });
      output(this).out(`${JSON.stringify(infos, null, 2)}\n`);
    });

  schema
    .command("gen")
    .description(
      "generate TypeScript types and validators for a QEMU (from its source tree or a saved query-qmp-schema reply)",
    )
    .option("--qapi-dir <dir>", "a QEMU source tree (or its qapi/ directory)")
    .option(
      "--from-introspection <file>",
      'a saved query-qmp-schema reply (the array, or the whole {"return": …} reply)',
    )
    .option("--out <dir>", "where to write the files", "qmp-generated")
    .action(function (
      this: Command,
      opts: { qapiDir?: string; fromIntrospection?: string; out: string },
    ) {
      if ((opts.qapiDir === undefined) === (opts.fromIntrospection === undefined)) {
        throw new UsageError(
          "schema gen: give exactly one of --qapi-dir DIR and --from-introspection FILE",
        );
      }
      let model: SchemaModel;
      let source: string;
      if (opts.qapiDir !== undefined) {
        const file = findQapiSchema(opts.qapiDir);
        model = load(this, file).model;
        source = file;
      } else {
        const file = opts.fromIntrospection!;
        let json: JsonValue;
        try {
          json = JSON.parse(readFileSync(file, "utf8")) as JsonValue;
        } catch (e) {
          throw new SchemaCommandError(
            `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`,
            { cause: e },
          );
        }
        const reply =
          typeof json === "object" && json !== null && !Array.isArray(json) && "return" in json
            ? json.return!
            : json;
        try {
          model = modelFromIntrospection(reply);
        } catch (e) {
          throw new SchemaCommandError(`${file}: ${e instanceof Error ? e.message : String(e)}`, {
            cause: e,
          });
        }
        source = file;
      }
      const shown = relative(process.cwd(), source) || source;
      const files = generateTypeScript(model, {
        source: shown,
        runtimeImport: "package",
        regenerate:
          opts.qapiDir !== undefined
            ? `regenerate with \`qmpkit schema gen --qapi-dir ${opts.qapiDir}\``
            : `regenerate with \`qmpkit schema gen --from-introspection ${shown}\``,
        ...(opts.fromIntrospection !== undefined
          ? {
              description: `Every command and event of the QEMU whose query-qmp-schema answer is ${shown}; QEMU masks the names of its types, so they are named here from where they are used (a command's Arguments and Result, an event's EventData, then member and branch names).`,
            }
          : {}),
      });
      mkdirSync(opts.out, { recursive: true });
      for (const f of files) writeFileSync(join(opts.out, f.name), f.content());
      output(this).out(`wrote ${files.map((f) => join(opts.out, f.name)).join(", ")}\n`);
    });
  return schema;
}

/** `DIR/qapi/qapi-schema.json`, or `DIR/qapi-schema.json` when DIR is the qapi directory itself. */
function findQapiSchema(dir: string): string {
  for (const candidate of [join(dir, "qapi", "qapi-schema.json"), join(dir, "qapi-schema.json")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new SchemaCommandError(
    `--qapi-dir ${dir}: no qapi/qapi-schema.json there (is it a QEMU source tree?)`,
  );
}
