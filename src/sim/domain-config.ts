/**
 * The configuration of a simulated domain as a management tool writes it on QEMU's command
 * line: libvirt 9.0 writes `-object`, `-device`, `-blockdev`, `-netdev` and `-audiodev` as JSON,
 * the rest as `key=value` lists (qemu-behaviour §13). What QMP answers depend on is kept here
 * (chardevs, fd sets, block nodes, peripherals with their ids, memory backends, the vCPU model
 * and topology, the uuid); `modules/domain.ts` answers from it.
 *
 * Options are checked as QEMU 7.2.22 and 10.0.2 check them, and refused with their texts
 * (compared with both binaries by `test/sim/domain-config.test.ts`). A check that needs the
 * release (an enum of the QAPI schema, the device types) runs once the whole line is read
 * ({@link finishDomainConfig}), as the release may be named anywhere on the line.
 *
 * @module
 */
import { isJsonObject, type JsonObject, type JsonValue } from "../base/json.js";
import { QemuOptionError, splitQemuOpts } from "./qemu-options-core.js";

/** `-smp`: the vCPU topology. */
export interface SmpTopology {
  readonly cpus: number;
  readonly maxcpus: number;
  readonly sockets: number;
  readonly dies: number;
  readonly cores: number;
  readonly threads: number;
}

/** A `-chardev`. */
export interface ChardevConfig {
  readonly id: string;
  /** The backend: `socket`, `pty`, `file`, `null`, … */
  readonly backend: string;
  /** `path=` (socket, file). */
  readonly path?: string | undefined;
  /** `server=on` (socket). */
  readonly server?: boolean | undefined;
  /** `fd=` (an inherited socket). */
  readonly fd?: number | undefined;
  /** Where `-option value` was, for messages. */
  readonly where: string;
  /**
   * Set at run time: a pty's slave path, an inherited socket's own address (`unix:PATH`), as
   * `query-chardev` names them.
   */
  runtimePath?: string | undefined;
}

/** A `-blockdev` node. */
export interface BlockNodeConfig {
  readonly nodeName: string;
  readonly driver: string;
  /** `filename` of a protocol node (`file`, `host_device`). */
  readonly filename?: string | undefined;
  /** The child node of a format node (`file`). */
  readonly file?: string | undefined;
  readonly readOnly: boolean;
  readonly autoReadOnly: boolean;
  readonly where: string;
}

/** A `-device` with an `id` (QEMU puts it at `/machine/peripheral/ID`). */
export interface PeripheralConfig {
  readonly id: string;
  readonly driver: string;
  readonly props: Readonly<Record<string, JsonValue>>;
  readonly where: string;
}

/** A `-object`. */
export interface ObjectConfig {
  readonly qomType: string;
  readonly id: string;
  readonly props: Readonly<Record<string, JsonValue>>;
  readonly where: string;
}

/** What a domain's command line configures, beyond the run-state options. */
export interface DomainConfig {
  /** The machine type as given (`pc-i440fx-7.2`). */
  machineType?: string | undefined;
  /** `-machine memory-backend=ID`. */
  memoryBackend?: string | undefined;
  /** `-cpu MODEL` (QEMU's default on x86_64: `qemu64`). */
  cpuModel: string;
  /** `-smp` as given (missing values defaulted by {@link smpTopology}). */
  smp?: Partial<SmpTopology> | undefined;
  /** Where `-smp` was. */
  smpWhere?: string | undefined;
  uuid?: string | undefined;
  objects: ObjectConfig[];
  /** Every `-chardev` (monitor ones included), in command-line order. */
  chardevs: ChardevConfig[];
  /** `-add-fd set=N,fd=M`: the descriptors of each set. */
  fdsets: Map<number, number[]>;
  blockNodes: BlockNodeConfig[];
  peripherals: PeripheralConfig[];
  /** `-device`s without an id (`/machine/peripheral-anon/device[N]`). */
  anonymousDevices: Array<{ driver: string; where: string }>;
  netdevs: Array<{ id: string; type: string; where: string }>;
  audiodevs: Array<{ id: string; driver: string; where: string }>;
}

/** A fresh configuration: one `qemu64` vCPU, nothing else. */
export function emptyDomainConfig(): DomainConfig {
  return {
    cpuModel: "qemu64",
    objects: [],
    chardevs: [],
    fdsets: new Map(),
    blockNodes: [],
    peripherals: [],
    anonymousDevices: [],
    netdevs: [],
    audiodevs: [],
  };
}

/**
 * The topology QEMU derives from `-smp` (hw/core/machine-smp.c, machine_parse_smp_config, as in
 * 7.2 and 10.0 for machine types from 6.2 on, which prefer cores over sockets): the missing
 * counts computed from the maximum, which is `cpus` unless given.
 */
export function smpTopology(smp: Partial<SmpTopology> | undefined): SmpTopology {
  const given = smp ?? {};
  const dies = given.dies || 1;
  let { cpus = 0, maxcpus = 0, sockets = 0, cores = 0, threads = 0 } = given;
  if (cpus === 0 && maxcpus === 0) {
    sockets ||= 1;
    cores ||= 1;
    threads ||= 1;
  } else {
    maxcpus ||= cpus;
    if (cores === 0) {
      sockets ||= 1;
      threads ||= 1;
      cores = Math.floor(maxcpus / (sockets * dies * threads));
    } else if (sockets === 0) {
      threads ||= 1;
      sockets = Math.floor(maxcpus / (dies * cores * threads));
    }
    if (threads === 0) threads = Math.floor(maxcpus / (sockets * dies * cores));
  }
  maxcpus ||= sockets * dies * cores * threads;
  cpus ||= maxcpus;
  return { cpus, maxcpus, sockets, dies, cores, threads };
}

/** Whether a JSON text ends before its outermost value closes (QEMU: `premature EOI`). */
function endsEarly(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
  }
  return inString || depth > 0;
}

/**
 * An option's value as QEMU reads `-object`, `-device`, `-netdev`, `-audiodev` and `-blockdev`:
 * JSON when it starts with `{` (qemu-behaviour §13.1), else `key=value,…` with `implied` the
 * key of a leading bare word (`-device virtio-net-pci,id=n0`: `driver`). Keys keep their
 * order; a `key=value` value is a string, as QEMU's keyval parser leaves it.
 */
export function parseJsonOrKeyval(
  where: string,
  value: string,
  implied: string | undefined,
): Record<string, JsonValue> {
  if (value.trimStart().startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (e) {
      throw new QemuOptionError(
        where,
        endsEarly(value)
          ? "JSON parse error, premature EOI"
          : `JSON parse error, ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (!isJsonObject(parsed as JsonValue))
      throw new QemuOptionError(where, "JSON parse error, expecting an object");
    return parsed as Record<string, JsonValue>;
  }
  const out: Record<string, JsonValue> = {};
  const parts = splitQemuOpts(value);
  parts.forEach(([k, v], i) => {
    if (v === undefined && i === 0 && implied !== undefined) out[implied] = k;
    else out[k] = v ?? "on";
  });
  return out;
}

/** `Parameter 'KEY' is missing` unless `props[key]` is a non-empty string. */
export function requireString(where: string, props: JsonObject, key: string): string {
  const v = props[key];
  if (v === undefined) throw new QemuOptionError(where, `Parameter '${key}' is missing`);
  if (typeof v !== "string") throw new QemuOptionError(where, `Parameter '${key}' expects string`);
  return v;
}

/** QEMU's size syntax (`qemu_strtosz`): a number with an optional k/M/G/T/P/E suffix, bytes. */
export function parseSizeValue(where: string, key: string, v: JsonValue | undefined): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  const m = typeof v === "string" ? /^(\d+(?:\.\d+)?)([bBkKmMgGtTpPeE]?)$/.exec(v) : null;
  if (m === null) throw new QemuOptionError(where, `Parameter '${key}' expects a size value`);
  const scale: Record<string, number> = {
    "": 1,
    B: 1,
    K: 2 ** 10,
    M: 2 ** 20,
    G: 2 ** 30,
    T: 2 ** 40,
    P: 2 ** 50,
    E: 2 ** 60,
  };
  return Math.round(Number(m[1]) * scale[(m[2] ?? "").toUpperCase()]!);
}

/** `on`/`off` as QEMU's keyval and JSON readers take them (`Parameter 'K' expects 'on' or 'off'`). */
export function parseBool(where: string, key: string, v: JsonValue | undefined): boolean {
  if (typeof v === "boolean") return v;
  if (v === "on" || v === "yes" || v === "true") return true;
  if (v === "off" || v === "no" || v === "false") return false;
  throw new QemuOptionError(where, `Parameter '${key}' expects 'on' or 'off'`);
}

/** A QEMU message with no `-option value:` location (QEMU prints those after parsing the line). */
export class UnlocatedOptionError extends QemuOptionError {
  constructor(reason: string) {
    super("", reason);
    this.message = reason;
  }
}

const UUID_RE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** `-uuid`: QEMU's `qemu_uuid_parse` (36 characters with dashes, or 32 hex digits). */
export function parseUuid(where: string, value: string): string {
  if (!UUID_RE.test(value) || (value.length !== 36 && value.length !== 32)) {
    throw new QemuOptionError(where, "failed to parse UUID string: wrong format");
  }
  const hex = value.replace(/-/g, "").toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `-smp [cpus=]N[,maxcpus=][,sockets=][,dies=][,cores=][,threads=]` into counts. */
export function parseSmp(where: string, value: string): Partial<SmpTopology> {
  const out: Record<string, number> = {};
  for (const [i, [k, v]] of splitQemuOpts(value).entries()) {
    const key = v === undefined && i === 0 ? "cpus" : k;
    const text = v === undefined && i === 0 ? k : v;
    if (!["cpus", "maxcpus", "sockets", "dies", "clusters", "cores", "threads"].includes(key)) {
      throw new QemuOptionError(where, `Invalid parameter '${key}'`);
    }
    if (text === undefined || !/^\d+$/.test(text)) {
      throw new QemuOptionError(where, `Parameter '${key}' expects a number`);
    }
    out[key] = Number(text);
  }
  return out as Partial<SmpTopology>;
}

/**
 * Checks `-smp` as QEMU does once the machine is known (machine_parse_smp_config): every count
 * above zero, and their product the maximum. `modules` says whether the release counts modules
 * in its topology (the message names them from QEMU 9.1).
 */
export function checkSmp(smp: Partial<SmpTopology>, modules: boolean): SmpTopology {
  for (const v of Object.values(smp)) {
    if (v === 0) {
      throw new UnlocatedOptionError(
        "Invalid CPU topology: CPU topology parameters must be greater than zero",
      );
    }
  }
  const t = smpTopology(smp);
  if (t.sockets * t.dies * t.cores * t.threads !== t.maxcpus) {
    throw new UnlocatedOptionError(
      `Invalid CPU topology: product of the hierarchy must match maxcpus: sockets (${t.sockets}) * dies (${t.dies})${modules ? " * modules (1)" : ""} * cores (${t.cores}) * threads (${t.threads}) != maxcpus (${t.maxcpus})`,
    );
  }
  if (t.cpus > t.maxcpus) {
    throw new UnlocatedOptionError(
      `Invalid CPU topology: maxcpus must be equal to or greater than smp: sockets (${t.sockets}) * dies (${t.dies})${modules ? " * modules (1)" : ""} * cores (${t.cores}) * threads (${t.threads}) == maxcpus (${t.maxcpus}) < smp_cpus (${t.cpus})`,
    );
  }
  return t;
}

/** The chardev backends QEMU 7.2 and 10.0 know (`ChardevBackendKind` without the Windows ones). */
export const CHARDEV_BACKENDS = new Set([
  "file",
  "serial",
  "tty",
  "parallel",
  "parport",
  "pipe",
  "socket",
  "udp",
  "pty",
  "null",
  "mux",
  "msmouse",
  "wctablet",
  "braille",
  "testdev",
  "stdio",
  "vc",
  "ringbuf",
  "memory",
  "spicevmc",
  "spiceport",
  "qemu-vdagent",
  "dbus",
]);

/**
 * A `-chardev` of a backend the simulator does not serve monitors on (pty, file, null, …): what
 * QEMU checks before it opens it. A `file` at `/dev/fdset/N` needs the set from `-add-fd`
 * (`Could not open '/dev/fdset/5': No such file or directory` otherwise).
 */
export function parseOtherChardev(
  where: string,
  value: string,
  fdsets: ReadonlyMap<number, readonly number[]>,
): ChardevConfig {
  const opts = parseJsonOrKeyval(where, value, "backend");
  const backend = String(opts.backend ?? "");
  if (opts.id === undefined) throw new QemuOptionError(where, "chardev: no id specified");
  if (!CHARDEV_BACKENDS.has(backend)) {
    throw new QemuOptionError(where, `'${backend}' is not a valid char driver name`);
  }
  const id = String(opts.id);
  const path = opts.path === undefined ? undefined : String(opts.path);
  if (backend === "file") {
    if (path === undefined) throw new QemuOptionError(where, "chardev: file: no filename given");
    const set = /^\/dev\/fdset\/(\d+)$/.exec(path);
    if (set !== null && !fdsets.has(Number(set[1]))) {
      throw new QemuOptionError(where, `Could not open '${path}': No such file or directory`);
    }
  }
  return { id, backend, path, where };
}

/** `-add-fd fd=M,set=N[,opaque=S]`: the descriptor must be open (and not 0–2). */
export function parseAddFd(
  where: string,
  value: string,
  isOpen: (fd: number) => boolean,
): { set: number; fd: number } {
  const opts = new Map(splitQemuOpts(value));
  const fdText = opts.get("fd");
  const fd = fdText !== undefined && /^\d+$/.test(fdText) ? Number(fdText) : -1;
  if (fd < 0) throw new QemuOptionError(where, "fd option is required and must be non-negative");
  if (fd <= 2 || !isOpen(fd)) throw new QemuOptionError(where, "fd is not valid or already in use");
  const setText = opts.get("set");
  const set = setText !== undefined && /^\d+$/.test(setText) ? Number(setText) : -1;
  if (set < 0) throw new QemuOptionError(where, "set option is required and must be non-negative");
  return { set, fd };
}

/** A `-blockdev`: the node name, the driver and its file or child node. */
export function parseBlockdev(
  where: string,
  value: string,
  nodes: readonly BlockNodeConfig[],
  fileExists: (path: string) => boolean,
): BlockNodeConfig {
  const o = parseJsonOrKeyval(where, value, undefined);
  const driver = requireString(where, o, "driver");
  const nodeName = typeof o["node-name"] === "string" ? o["node-name"] : undefined;
  if (nodeName === undefined) {
    // libvirt always names its nodes; QEMU would make up `#blockN`.
    throw new QemuOptionError(where, "the simulator needs node-name on -blockdev");
  }
  if (nodes.some((n) => n.nodeName === nodeName)) {
    throw new QemuOptionError(where, `Duplicate nodes with node-name='${nodeName}'`);
  }
  let filename: string | undefined;
  let file: string | undefined;
  if (driver === "file" || driver === "host_device" || driver === "host_cdrom") {
    filename = requireString(where, o, "filename");
    if (!fileExists(filename)) {
      throw new QemuOptionError(where, `Could not open '${filename}': No such file or directory`);
    }
  } else {
    const child = o.file;
    if (child === undefined) throw new QemuOptionError(where, "Parameter 'file' is missing");
    if (typeof child !== "string") {
      throw new QemuOptionError(where, "the simulator needs file=NODE-NAME on a format -blockdev");
    }
    if (!nodes.some((n) => n.nodeName === child)) {
      throw new QemuOptionError(where, `Cannot find device='${child}' nor node-name='${child}'`);
    }
    file = child;
  }
  return {
    nodeName,
    driver,
    filename,
    file,
    readOnly: o["read-only"] === undefined ? false : parseBool(where, "read-only", o["read-only"]),
    autoReadOnly:
      o["auto-read-only"] === undefined
        ? false
        : parseBool(where, "auto-read-only", o["auto-read-only"]),
    where,
  };
}

/** The filename of a node: its own, or its child's (a format node reports its file's name). */
export function nodeFilename(
  nodes: readonly BlockNodeConfig[],
  node: BlockNodeConfig,
): string | undefined {
  let n: BlockNodeConfig | undefined = node;
  for (let depth = 0; n !== undefined && depth < 16; depth++) {
    if (n.filename !== undefined) return n.filename;
    const child: string | undefined = n.file;
    n = nodes.find((m) => m.nodeName === child);
  }
  return undefined;
}

/** The properties of an object as a plain record (for `-object` checks). */
export function asProps(o: Record<string, JsonValue>): Record<string, JsonValue> {
  const { "qom-type": _t, id: _i, ...rest } = o;
  return rest;
}
