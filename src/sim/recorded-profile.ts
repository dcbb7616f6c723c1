/**
 * Capability profiles: what a real QEMU binary answers to the commands that state facts of the
 * binary (`query-target`, `query-machines`, `qom-list-types`, `device-list-properties`, …),
 * recorded by `scripts/record-profile.ts` while libvirt 9.0's capability probe is played against
 * it, and answered by the simulator byte for byte.
 *
 * A profile is `profiles/qemu-VERSION.jsonl` (shipped with the package): a header line, then
 * one line per request (`{"execute": …, "arguments": …}`, keys sorted) each followed by QEMU's
 * reply exactly as it printed it, without its `\r\n`. The reply is kept as QEMU's text, not as a
 * value: the simulator parses it and hands it to the server, whose writer (`writeQemuJson`,
 * §1.1) prints it again; {@link RecordedProfile.answerText} is that printed form, and the tests
 * check it equals the recorded bytes for every record.
 *
 * A recorded command answers the recorded reply to the same arguments (compared after sorting
 * object keys, so `{"type", "model"}` and `{"model", "type"}` are one request). To arguments
 * that were not recorded it answers:
 * - `device-list-properties` / `qom-list-properties` of a type the binary lacks, or of one
 *   `device-list-properties` refuses (abstract, not a device), QEMU's own error
 *   (qom/qom-qmp-cmds.c), decided from the recorded `qom-list-types {"abstract": true}`;
 * - anything else a GenericError saying that the profile holds no answer to that request
 *   (QEMU would answer, but the profile cannot know what).
 * Arguments are checked first against the recorded `query-qmp-schema`, so malformed ones get
 * QEMU's argument errors.
 *
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { QmpError } from "../base/errors.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { compileValidators, type SchemaValidators } from "../schema/dynamic.js";
import { modelFromIntrospection } from "../schema/introspect.js";
import type { Validator } from "../schema/validator.js";
import { type CommandContext, type CommandOptions, QmpReplyError } from "../server/index.js";
import { JsonStreamDecoder, restoreQdictOrder, writeQemuJson } from "../wire/index.js";

/** One recorded exchange. */
export interface ProfileRecord {
  readonly execute: string;
  readonly arguments?: Readonly<Record<string, unknown>> | undefined;
  /** QEMU's reply line as it printed it, without `\r\n` (no `id`: none was sent). */
  readonly reply: string;
}

/** The header line of a profile. */
export interface ProfileHeader {
  /** The profile format (1). */
  readonly "qmpkit-profile": number;
  /** The QEMU release recorded, `major.minor.micro`. */
  readonly qemu: string;
  /** How QEMU ran (the QMP socket's path elided). */
  readonly "command-line": readonly string[];
}

/**
 * How the recorder runs QEMU: as libvirt 9.0's probe does (qemuProcessQMPLaunch), with TCG
 * named as the accelerator (libvirt asks for `kvm:tcg`, which is TCG without /dev/kvm) and
 * `-display none` for `-nographic` (which `-nodefaults` leaves with nothing to redirect).
 */
export const PROFILE_COMMAND_LINE: readonly string[] = [
  "qemu-system-x86_64",
  "-machine",
  "none,accel=tcg",
  "-display",
  "none",
  "-nodefaults",
  "-S",
  "-no-user-config",
  "-qmp",
  "unix:PATH,server=on,wait=off",
];

/** Where the profile of `version` is (the same relative path from `src/sim` and `dist/sim`). */
export function profilePath(version: string): string {
  return fileURLToPath(new URL(`../../profiles/qemu-${version}.jsonl`, import.meta.url));
}

/** A value with the keys of every object sorted: one spelling per request. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    out[key] = sortedKeys((value as Record<string, unknown>)[key]);
  }
  return out;
}

/** The request line of a record: `{"execute": …, "arguments": …}`, keys sorted, no `{}` arguments. */
export function requestLine(execute: string, args?: Readonly<Record<string, unknown>>): string {
  const hasArgs = args !== undefined && Object.keys(args).length > 0;
  return JSON.stringify(hasArgs ? { execute, arguments: sortedKeys(args) } : { execute });
}

/** A profile's text: the header line, then each request line and its reply line. */
export function formatProfile(version: string, records: readonly ProfileRecord[]): string {
  const header: ProfileHeader = {
    "qmpkit-profile": 1,
    qemu: version,
    "command-line": PROFILE_COMMAND_LINE,
  };
  const lines = [JSON.stringify(header)];
  for (const r of records) lines.push(requestLine(r.execute, r.arguments), r.reply);
  return `${lines.join("\n")}\n`;
}

/** A profile's text is not what {@link formatProfile} writes, or a release has no profile. */
export class ProfileError extends QmpError {
  override name = "ProfileError";
}

/**
 * Where the vCPU properties of `version`'s CPU model `model` are recorded (`qom-list` and every
 * `qom-get` of a vCPU, as libvirt asks them once a domain starts; `scripts/record-vcpu.ts`).
 */
export function vcpuProfilePath(version: string, model: string): string {
  return fileURLToPath(
    new URL(`../../profiles/qemu-${version}-vcpu-${model}.jsonl`, import.meta.url),
  );
}

const loadedVcpu = new Map<string, RecordedProfile | undefined>();

/** The recorded vCPU properties of a release's CPU model, if shipped (read once). */
export function recordedVcpuProfile(version: string, model: string): RecordedProfile | undefined {
  const key = `${version}/${model}`;
  if (loadedVcpu.has(key)) return loadedVcpu.get(key);
  let profile: RecordedProfile | undefined;
  try {
    const { records } = parseProfile(readFileSync(vcpuProfilePath(version, model), "latin1"));
    profile = new RecordedProfile(version, records);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  loadedVcpu.set(key, profile);
  return profile;
}

/** Parses {@link formatProfile}'s text. */
export function parseProfile(text: string): { header: ProfileHeader; records: ProfileRecord[] } {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const header = JSON.parse(lines[0] ?? "null") as ProfileHeader | null;
  if (header?.["qmpkit-profile"] !== 1 || lines.length % 2 !== 1) {
    throw new ProfileError("not a qmpkit profile: a header line, then request/reply pairs");
  }
  const records: ProfileRecord[] = [];
  for (let i = 1; i < lines.length; i += 2) {
    const request = JSON.parse(lines[i]!) as ProfileRecord;
    if (typeof request.execute !== "string" || !/^\{"(return|error)": /.test(lines[i + 1]!)) {
      throw new ProfileError(`line ${i + 1}: a request and QEMU's reply expected`);
    }
    records.push({ execute: request.execute, arguments: request.arguments, reply: lines[i + 1]! });
  }
  return { header, records };
}

/** A reply line as a value, with its objects in an order that `writeQemuJson` prints as QEMU did. */
function parseReply(line: string): JsonObject {
  const items = new JsonStreamDecoder({ dialect: "client" }).push(
    Buffer.from(`${line}\n`, "latin1"),
  );
  const item = items[0];
  if (items.length !== 1 || item?.kind !== "value" || !isJsonObject(item.value)) {
    throw new ProfileError(`not a QMP reply: ${line.slice(0, 100)}`);
  }
  return restoreQdictOrder(item.value) as JsonObject;
}

/** What the simulator answers from a profile. */
export class RecordedProfile {
  readonly version: string;
  readonly records: readonly ProfileRecord[];
  /** Recorded replies by request line, parsed on first use. */
  readonly #replies = new Map<string, { readonly line: string; value?: JsonObject }>();
  #validators: SchemaValidators | undefined;
  #registrations: Map<string, RecordedCommand> | undefined;
  #types: Map<string, { parent: string | undefined; abstract: boolean }> | undefined;

  constructor(version: string, records: readonly ProfileRecord[]) {
    this.version = version;
    this.records = records;
    for (const r of records)
      this.#replies.set(requestLine(r.execute, r.arguments), { line: r.reply });
  }

  /** The commands recorded, in recording order. */
  get commands(): string[] {
    return [...new Set(this.records.map((r) => r.execute))];
  }

  /**
   * Each recorded command as a machine registers it: made once per profile and shared by every
   * machine and monitor (the handler and the options depend on the profile alone).
   */
  get registrations(): ReadonlyMap<string, RecordedCommand> {
    if (this.#registrations !== undefined) return this.#registrations;
    const out = new Map<string, RecordedCommand>();
    for (const name of this.commands) {
      out.set(name, {
        fn: (args) => this.answer(name, args),
        options: {
          args: lazyValidator(this, name),
          // allow-preconfig is not introspected; the simulator's own introspection commands
          // have it, as QEMU's do.
          allowPreconfig: name === "query-qmp-schema" || name === "query-commands",
        },
      });
    }
    this.#registrations = out;
    return out;
  }

  /**
   * The values of the enum that a member of a command's arguments (or, with `side: "ret"`, of
   * its return's elements) has in the recorded `query-qmp-schema`: e.g. `netdev_add`'s `type`.
   * Undefined when the schema has no such command or member.
   */
  enumOfMember(command: string, member: string, side: "arg" | "ret" = "arg"): string[] | undefined {
    const schema = this.reply("query-qmp-schema")?.return;
    if (!Array.isArray(schema)) return undefined;
    const byName = new Map<string, JsonObject>();
    for (const entry of schema) if (isJsonObject(entry)) byName.set(String(entry.name), entry);
    const c = byName.get(command);
    let type = byName.get(String(c?.[side === "arg" ? "arg-type" : "ret-type"]));
    if (type?.["meta-type"] === "array") type = byName.get(String(type["element-type"]));
    const members = Array.isArray(type?.members) ? type.members : [];
    const m = members.find((x) => isJsonObject(x) && x.name === member) as JsonObject | undefined;
    const e = byName.get(String(m?.type));
    return e?.["meta-type"] === "enum" && Array.isArray(e.values)
      ? e.values.map(String)
      : undefined;
  }

  /** The recorded reply (parsed) to exactly this request, if any. */
  reply(execute: string, args?: Readonly<Record<string, unknown>>): JsonObject | undefined {
    const entry = this.#replies.get(requestLine(execute, args));
    if (entry === undefined) return undefined;
    entry.value ??= parseReply(entry.line);
    return entry.value;
  }

  /**
   * The answer to a request: the recorded `return` value, or throws the recorded error (or, for
   * arguments not recorded, the error described in the module doc) as a {@link QmpReplyError}.
   */
  answer(execute: string, args: Readonly<Record<string, unknown>> = {}): JsonValue {
    const reply = this.reply(execute, args) ?? this.#unrecorded(execute, args);
    const error = reply.error;
    if (isJsonObject(error)) throw new QmpReplyError(String(error.class), String(error.desc));
    return reply.return ?? {};
  }

  /** The reply line the simulator prints for a recorded request (the recorded bytes, if faithful). */
  answerText(record: ProfileRecord): string {
    const reply = this.reply(record.execute, record.arguments);
    if (reply === undefined) throw new Error(`no record of ${record.execute}`);
    return writeQemuJson(reply);
  }

  /** A command's argument validator from the recorded `query-qmp-schema` (none if unrecorded). */
  argsValidator(command: string): Validator<unknown> | undefined {
    if (this.#validators === undefined) {
      const schema = this.reply("query-qmp-schema")?.return;
      if (schema === undefined) return undefined;
      this.#validators = compileValidators(modelFromIntrospection(schema));
    }
    return this.#validators.commandArgs(command);
  }

  #unrecorded(execute: string, args: Readonly<Record<string, unknown>>): JsonObject {
    const typename = args.typename;
    if (
      typeof typename === "string" &&
      (execute === "device-list-properties" || execute === "qom-list-properties")
    ) {
      const refusal = this.#typeRefusal(execute, typename);
      if (refusal !== undefined) return { error: refusal };
    }
    return {
      error: {
        class: "GenericError",
        desc: `qmpkit sim: the QEMU ${this.version} profile has no recorded answer to ${requestLine(execute, args)}`,
      },
    };
  }

  /**
   * QEMU's refusal of a type name, or undefined if it would answer (qom/qom-qmp-cmds.c:
   * `qmp_device_list_properties` wants a known, non-abstract device type;
   * `qmp_qom_list_properties` a known one).
   */
  #typeRefusal(execute: string, typename: string): JsonObject | undefined {
    const types = this.#typeTable();
    if (types === undefined) return undefined;
    const type = types.get(typename);
    if (execute === "qom-list-properties") {
      return type === undefined
        ? { class: "DeviceNotFound", desc: `Class '${typename}' not found` }
        : undefined;
    }
    if (type === undefined) {
      return { class: "DeviceNotFound", desc: `Device '${typename}' not found` };
    }
    let isDevice = false;
    for (let t: string | undefined = typename; t !== undefined; t = types.get(t)?.parent) {
      if (t === "device") isDevice = true;
    }
    return isDevice && !type.abstract
      ? undefined
      : {
          class: "GenericError",
          desc: "Parameter 'typename' expects a non-abstract device type",
        };
  }

  /** Every type of the binary with its parent, from `qom-list-types {"abstract": true}`. */
  #typeTable(): Map<string, { parent: string | undefined; abstract: boolean }> | undefined {
    if (this.#types !== undefined) return this.#types;
    const list = this.reply("qom-list-types", { abstract: true })?.return;
    if (!Array.isArray(list)) return undefined;
    this.#types = new Map();
    for (const t of list) {
      if (!isJsonObject(t) || typeof t.name !== "string") continue;
      this.#types.set(t.name, {
        parent: typeof t.parent === "string" ? t.parent : undefined,
        abstract: t.abstract === true,
      });
    }
    return this.#types;
  }
}

const loaded = new Map<string, RecordedProfile | undefined>();

/** The shipped profile of QEMU `version` (`7.2.22`, `10.0.2`), or undefined if there is none. */
export function recordedProfile(version: string): RecordedProfile | undefined {
  if (loaded.has(version)) return loaded.get(version);
  let text: string | undefined;
  try {
    text = readFileSync(profilePath(version), "latin1");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const profile =
    text === undefined ? undefined : new RecordedProfile(version, parseProfile(text).records);
  loaded.set(version, profile);
  return profile;
}

/** How a machine advertises its commands (`query-qmp-schema`, `query-commands`). */
export type AdvertisedCommands = "implemented" | "recorded";

/** The profile of `version`, or a {@link ProfileError} naming the releases that have one. */
export function requireRecordedProfile(version: string): RecordedProfile {
  const profile = recordedProfile(version);
  if (profile === undefined) {
    throw new ProfileError(
      `no recorded profile for QEMU ${version}: recorded are ${recordedVersions().join(", ")}`,
    );
  }
  return profile;
}

/**
 * Checks a machine's `advertise` option: one of {@link AdvertisedCommands}, and `recorded` only
 * for a release with a profile; otherwise a {@link ProfileError}.
 */
export function checkAdvertise(version: string, advertise: unknown): void {
  if (advertise === undefined || advertise === "implemented") return;
  if (advertise !== "recorded") {
    throw new ProfileError(
      `advertise must be 'implemented' or 'recorded', not ${JSON.stringify(advertise)}`,
    );
  }
  requireRecordedProfile(version);
}

/** A command answered from a profile, as a machine registers it. */
export interface RecordedCommand {
  readonly fn: (args: JsonObject, ctx: CommandContext) => unknown;
  readonly options: CommandOptions;
}

/**
 * The commands a machine answers from its release's profile: every recorded command `table`
 * does not implement, and with `advertise: "recorded"` also `query-qmp-schema` and
 * `query-commands`, answered as the real binary answers them (which lists commands the
 * simulator neither implements nor recorded: those stay CommandNotFound). Empty without a
 * profile; `recorded` without one throws a {@link ProfileError}.
 */
export function recordedCommands(
  version: string,
  table: ReadonlyMap<string, unknown>,
  advertise: AdvertisedCommands = "implemented",
): Map<string, RecordedCommand> {
  const out = new Map<string, RecordedCommand>();
  const profile =
    advertise === "recorded" ? requireRecordedProfile(version) : recordedProfile(version);
  if (profile === undefined) return out;
  const advertising = new Set(
    advertise === "recorded" ? ["query-qmp-schema", "query-commands"] : [],
  );
  for (const [name, command] of profile.registrations) {
    if (!table.has(name) || advertising.has(name)) out.set(name, command);
  }
  return out;
}

/** The versions with a shipped profile. */
export function recordedVersions(): string[] {
  const dir = new URL("../../profiles/", import.meta.url);
  return readdirSync(dir)
    .map((f) => /^qemu-(\d+\.\d+\.\d+)\.jsonl$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined);
}

/** A validator that compiles the recorded schema only when a request first needs it. */
function lazyValidator(profile: RecordedProfile, command: string): Validator<unknown> {
  let real: Validator<unknown> | undefined | null = null;
  const get = () => {
    if (real === null) real = profile.argsValidator(command);
    return real;
  };
  return {
    name: `${command} arguments (QEMU ${profile.version})`,
    check: (v, o): v is unknown => get()?.check(v, o) ?? true,
    errors: (v, o) => get()?.errors(v, o) ?? [],
    parse: (v, o) => get()?.parse(v, o) ?? v,
  };
}
