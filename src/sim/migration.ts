/**
 * Outgoing (and the listening side of incoming) migration of the simulated machine: the
 * migration state machine with its MIGRATION / MIGRATION_PASS events, the capabilities, and
 * `query-migrate`'s MigrationInfo with the members QEMU reports in each status.
 *
 * Which members appear when (QEMU 7.2 `migration/migration.c`, `fill_source_migration_info`,
 * `populate_time_info`, `populate_ram_info`, `fill_destination_migration_info`; observed on
 * 7.2.22):
 *
 * | status | members |
 * |---|---|
 * | none (never migrated) | nothing: `{}` |
 * | any, while a device cannot be migrated | also `blocked-reasons` (6.0+), newest device first |
 * | setup | `status` |
 * | active, cancelling | `status`, `setup-time`, `total-time` (so far), `expected-downtime`, `ram` (+ `xbzrle-cache` with xbzrle, `compression` with compress) |
 * | completed | `status`, `setup-time`, `total-time`, `downtime`, `ram` (`remaining` and `dirty-pages-rate` 0; the same extras) |
 * | failed | `status`, and `error-desc` when the failure has a reason |
 * | cancelled | `status` |
 * | destination, listening | `socket-address` only (no `status` until the stream arrives; 10.0: `status` setup too) |
 * | pre-switchover, device (pause-before-switchover; 10.0: device always) | as active |
 * | destination, done | `status` |
 *
 * The numbers are the simulator's own, but consistent with each other and with how QEMU counts:
 * `total` is the RAM the machine has (`-m`, plus 130 pages of firmware ROM on `-machine pc`,
 * nothing on `-machine none` without `-m`); pages are sent in order at the migration bandwidth
 * (QEMU's default `max-bandwidth`, 128 MiB/s, unless configured), a zero page costs 9 bytes on
 * the wire and a normal one its size plus 8; `remaining` is the RAM not yet sent; the switch-over
 * happens once what remains could be sent within the downtime limit (300 ms by default); times
 * come from the
 * simulator's clock, in milliseconds.
 *
 * The migration parameters (`query-migrate-parameters`, `migrate-set-parameters`) start from
 * QEMU's defaults; `max-bandwidth` and `downtime-limit` drive the model, `xbzrle-cache-size`
 * shows in `xbzrle-cache`, the rest are kept and reported. Range checks and their texts follow
 * 7.2's `migrate_params_check` (checked on 7.2.22 and 10.0).
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../base/json.js";
import type {
  MigrationAddress,
  MigrationCapabilityStatus,
  MigrationChannel,
} from "../generated/index.js";
import type { MigrationFailure } from "./devices.js";
import { QmpReplyError } from "../server/reply-error.js";
import { openForWriteError } from "./host-files.js";
import type { RunState } from "./run-state.js";
import { enumValuesIn, inSchemaOrder, versionHasMember } from "./schema-info.js";
import type { DeviceHost } from "./sim-module.js";
import { changedIn, type QemuProfile, type QemuVersionNumber } from "./versions.js";

export type { MigrationFailure } from "./devices.js";

/** Options of {@link SimMigration}. */
export interface SimMigrationOptions {
  /** Bytes of RAM that a migration sends (`ram.total`). */
  ramBytes: number;
  /** Of those pages, how many hold data now (the rest are zero pages); read as a migration starts. */
  normalPages(): number;
  /** Bytes of device state and section headers sent at the switch-over. */
  deviceStateBytes: number;
  /**
   * The initial `max-bandwidth` in bytes per second (later changed by `migrate-set-parameters`).
   * Default 134217728, QEMU's.
   */
  bandwidth?: number | undefined;
  /** Decides whether a migration to `uri` fails, and how. Default: every migration succeeds. */
  failure?: ((uri: string) => MigrationFailure | undefined) | undefined;
  /**
   * The vmstate instance paths of the non-migratable devices present now, in creation order.
   * Default: none.
   */
  blockers?: (() => readonly string[]) | undefined;
}

/**
 * The migration parameters of a fresh QEMU, in schema order (`query-migrate-parameters` on 7.2.22
 * and on 10.0; each release answers with the members it has). `block-bitmap-mapping` is absent
 * until set.
 */
const DEFAULT_PARAMETERS: Readonly<JsonObject> = {
  "announce-initial": 50,
  "announce-max": 550,
  "announce-rounds": 5,
  "announce-step": 100,
  "compress-level": 1,
  "compress-threads": 8,
  "compress-wait-thread": true,
  "decompress-threads": 2,
  "throttle-trigger-threshold": 50,
  "cpu-throttle-initial": 20,
  "cpu-throttle-increment": 10,
  "cpu-throttle-tailslow": false,
  "tls-creds": "",
  "tls-hostname": "",
  "tls-authz": "",
  "max-bandwidth": 128 * 1024 * 1024,
  "avail-switchover-bandwidth": 0,
  "downtime-limit": 300,
  "x-checkpoint-delay": 20000,
  "block-incremental": false,
  "multifd-channels": 2,
  "xbzrle-cache-size": 64 * 1024 * 1024,
  "max-postcopy-bandwidth": 0,
  "max-cpu-throttle": 99,
  "multifd-compression": "none",
  "multifd-zlib-level": 1,
  "multifd-qatzip-level": 1,
  "multifd-zstd-level": 1,
  "x-vcpu-dirty-limit-period": 1000,
  "vcpu-dirty-limit": 1,
  mode: "normal",
  "zero-page-detection": "multifd",
  "direct-io": false,
};

/**
 * `migrate_params_check` (7.2 `migration/migration.c`), in its order: the member, the name QEMU
 * uses in the message (C spelling), whether a value passes (given all the merged values), and
 * what it expects. The texts are 7.2.22's; multifd-qatzip-level and x-vcpu-dirty-limit-period
 * (absent from 7.2) are 10.0's.
 */
const PARAMETER_CHECKS: ReadonlyArray<
  readonly [string, string, (v: bigint, all: JsonObject) => boolean, string]
> = [
  ["compress-level", "compress_level", (v) => v <= 9n, "a value between 0 and 9"],
  ["compress-threads", "compress_threads", (v) => v >= 1n, "a value between 1 and 255"],
  ["decompress-threads", "decompress_threads", (v) => v >= 1n, "a value between 1 and 255"],
  [
    "throttle-trigger-threshold",
    "throttle_trigger_threshold",
    (v) => v >= 1n && v <= 100n,
    "an integer in the range of 1 to 100",
  ],
  [
    "cpu-throttle-initial",
    "cpu_throttle_initial",
    (v) => v >= 1n && v <= 99n,
    "an integer in the range of 1 to 99",
  ],
  [
    "cpu-throttle-increment",
    "cpu_throttle_increment",
    (v) => v >= 1n && v <= 99n,
    "an integer in the range of 1 to 99",
  ],
  [
    "downtime-limit",
    "downtime_limit",
    (v) => v <= 2_000_000n,
    "an integer in the range of 0 to (2000 * 1000) ms",
  ],
  ["multifd-channels", "multifd_channels", (v) => v >= 1n, "a value between 1 and 255"],
  ["multifd-zlib-level", "multifd_zlib_level", (v) => v <= 9n, "a value between 0 and 9"],
  [
    "multifd-qatzip-level",
    "multifd_qatzip_level",
    (v) => v >= 1n && v <= 9n,
    "a value between 1 and 9",
  ],
  ["multifd-zstd-level", "multifd_zstd_level", (v) => v <= 20n, "a value between 0 and 20"],
  [
    "xbzrle-cache-size",
    "xbzrle_cache_size",
    (v) => v >= BigInt(PAGE_SIZE) && (v & (v - 1n)) === 0n,
    "a power of two no less than the target page size",
  ],
  [
    "max-cpu-throttle",
    "max_cpu_throttle",
    (v, all) => v >= BigInt(Number(all["cpu-throttle-initial"] ?? 0)) && v <= 99n,
    "an integer in the range of cpu_throttle_initial to 99",
  ],
  ["announce-initial", "announce_initial", (v) => v <= 100_000n, "a value between 0 and 100000"],
  ["announce-max", "announce_max", (v) => v <= 100_000n, "a value between 0 and 100000"],
  ["announce-rounds", "announce_rounds", (v) => v <= 1000n, "a value between 0 and 1000"],
  ["announce-step", "announce_step", (v) => v >= 1n && v <= 10_000n, "a value between 0 and 10000"],
  [
    "x-vcpu-dirty-limit-period",
    "x-vcpu-dirty-limit-period",
    (v) => v >= 1n && v <= 1000n,
    "a value between 1 and 1000",
  ],
];
/** `qemu_target_page_size()` on x86. */
const PAGE_SIZE = 4096;
/** A zero page goes out as its 8-byte header and one byte (`save_zero_page`). */
const ZERO_PAGE_WIRE = 9;
/** A normal page goes out as its header and its contents. */
const NORMAL_PAGE_WIRE = PAGE_SIZE + 8;
/** How long `setup` lasts before the first dirty-bitmap sync, in ms. */
const SETUP_MS = 1;
/** QEMU's rate-limit window (`BUFFER_DELAY`, 100 ms): one iteration sends at most its share. */
const WINDOW_MS = 100;

const MIGRATION_PROTOCOLS = ["tcp:", "unix:", "exec:", "fd:", "rdma:", "vsock:"];

/**
 * Why `inet_parse` (util/qemu-sockets.c, 7.2 and 10.0) refuses `str` (`host:port[,options]`),
 * or `undefined`. Its `sscanf` patterns: `:%32[^,]` without a host, `[%64[^]]]:%32[^,]` for
 * IPv6, `%64[^:]:%32[^,]` otherwise; then the `,to=` number and the `,ipv4`/`,ipv6` flags.
 */
function inetParseError(str: string): string | undefined {
  const [pattern, what] = str.startsWith(":")
    ? [/^:[^,]{1,32}/, "error parsing port in address"]
    : str.startsWith("[")
      ? [/^\[[^\]]{1,64}\]:[^,]{1,32}/, "error parsing IPv6 address"]
      : [/^[^:]{1,64}:[^,]{1,32}/, "error parsing address"];
  const matched = pattern.exec(str);
  if (matched === null) return `${what} '${str}'`;
  const options = str.slice(matched[0].length);
  const to = options.indexOf(",to=");
  if (to >= 0) {
    const after = options.slice(to + 4);
    const n = /^\s*[+-]?\d+/.exec(after)?.[0];
    const next = n === undefined ? undefined : after[n.length];
    if (n === undefined || (next !== undefined && next !== ","))
      return "error parsing to= argument";
  }
  for (const flag of ["ipv4", "ipv6"]) {
    const at = options.indexOf(`,${flag}`);
    if (at < 0) continue;
    // inet_parse_flag: nothing, `=on` or `=off` up to the next comma (and not `,,`).
    const rest = options.slice(at + 1 + flag.length);
    const comma = rest.indexOf(",");
    const value = comma < 0 ? rest : rest.slice(0, comma);
    if (rest[comma + 1] === "," && comma >= 0) return `error parsing '${flag}' flag '${rest}'`;
    if (value !== "" && value !== "=on" && value !== "=off") {
      return `error parsing '${flag}' flag '${rest}'`;
    }
  }
  return undefined;
}

/**
 * Why `socket_parse` (util/qemu-sockets.c) refuses `str`, or `undefined`: an empty `unix:` or
 * `fd:` address, a `vsock:` address that is not `cid:port` (`vsock_parse`), an inet address
 * `inet_parse` refuses (with or without `tcp:`).
 */
function socketParseError(str: string): string | undefined {
  if (str.startsWith("unix:")) return str.length === 5 ? "invalid Unix socket address" : undefined;
  if (str.startsWith("fd:"))
    return str.length === 3 ? "invalid file descriptor address" : undefined;
  if (str.startsWith("vsock:")) {
    const address = str.slice(6);
    const matched = /^[^:]{1,32}:[^,]{1,32}/.exec(address);
    if (matched === null) return `error parsing address '${address}'`;
    if (matched[0].length !== address.length) {
      return `trailing characters in address '${address}'`;
    }
    return undefined;
  }
  return inetParseError(str.startsWith("tcp:") ? str.slice(4) : str);
}

/** How `migrate` fails as it starts (after MIGRATION setup): `error-desc`, and stderr if any. */
interface StartFailure {
  readonly desc: string;
  readonly stderr?: string | undefined;
}

/** The name of a file descriptor passed with `getfd` (the simulator has none). */
const fdNotFound = (name: string): StartFailure => ({
  desc: `File descriptor named '${name}' has not been found`,
});

/**
 * 7.2's `qmp_migrate`, once the migration is in `setup`: the address each transport cannot use.
 * `socket_start_outgoing_migration` gets what follows `tcp:` (and a whole `unix:` or `vsock:`
 * URI) for `socket_parse`; `fd_start_outgoing_migration` looks the name up with
 * `monitor_get_fd`; `qemu_rdma_data_init` (migration/rdma.c) refuses an address `inet_parse`
 * refuses, also on stderr (its `ERROR` macro). Each fails through `migrate_fd_error`: `failed`,
 * with `error-desc`. Addresses that parse fail later, or not at all, as connecting goes.
 */
function startFailure72(uri: string): StartFailure | undefined {
  if (/^(tcp|unix|vsock):/.test(uri)) {
    const desc = socketParseError(uri.startsWith("tcp:") ? uri.slice(4) : uri);
    return desc === undefined ? undefined : { desc };
  }
  if (uri.startsWith("fd:")) return fdNotFound(uri.slice(3));
  if (uri.startsWith("rdma:")) {
    const address = uri.slice(5);
    if (inetParseError(address) === undefined) return undefined;
    const desc = `RDMA ERROR: bad RDMA migration address '${address}'`;
    return { desc, stderr: `${desc}\n` };
  }
  return undefined;
}

/**
 * 10.0's `migrate_uri_parse` (migration/migration.c), before anything starts (no event, the
 * status stays): `socket_parse` on the whole `tcp:`/`unix:`/`vsock:`/`fd:` URI, the `file:` URI's
 * `,offset=` (`file_parse_offset`), an unknown protocol. An `rdma:` address `inet_parse` refuses
 * makes 10.0.2 abort (it frees the address twice: "free(): invalid pointer"); the simulator
 * answers `inet_parse`'s error instead.
 */
function uriParseError10(uri: string): string | undefined {
  if (uri.startsWith("exec:")) return undefined;
  if (uri.startsWith("rdma:")) return inetParseError(uri.slice(5));
  if (/^(tcp|unix|vsock|fd):/.test(uri)) return socketParseError(uri);
  if (uri.startsWith("file:")) {
    const offset = uri.indexOf(",offset=");
    if (offset >= 0 && !/^\d+[bkmgtpe]?$/i.test(uri.slice(offset + 8))) {
      return `file URI has bad offset ${uri.slice(offset + 8)}: Invalid argument`;
    }
    return undefined;
  }
  return `unknown migration protocol: ${uri}`;
}

/**
 * 10.0's `qmp_migrate` once in `setup`: an `fd:` name that `getfd` never gave (a number is a
 * name too: "fd:99999" is not found, seen on 10.0.2), a `file:` that
 * `qio_channel_file_new_path` cannot create. Both fail through `migrate_connect_error`.
 */
function startFailure10(uri: string): StartFailure | undefined {
  if (uri.startsWith("fd:")) return fdNotFound(uri.slice(3));
  if (uri.startsWith("file:")) {
    const spec = uri.slice(5);
    const offset = spec.indexOf(",offset=");
    const path = offset >= 0 ? spec.slice(0, offset) : spec;
    const why = openForWriteError(path);
    return why === undefined ? undefined : { desc: `Could not create '${path}': ${why}` };
  }
  return undefined;
}

/**
 * Where `migrate` or `migrate-incoming` sends or listens, from its `uri` or, from 8.2, its
 * `channels` instead, as the URI that means the same address (the simulator keys its failures
 * and its yank on the URI). The arguments are checked as QEMU checks them before anything starts:
 *
 * - 10.0 (compared with Debian's 10.0.2): exactly one of the two, an empty list counting as none
 *   ("need either …"); `migrate` takes one `main` channel at most (and a `cpr` one, which 10.0
 *   added), `migrate-incoming` exactly one entry, of type `main`. QEMU 10.0.2 crashes on a
 *   `migrate` whose channels have no `main` entry (seen); the simulator refuses it instead.
 * - 9.0 to 9.2: the same first check; a second entry is refused in 8.2's words.
 * - 8.2 (commit 074dbce5fcce, before the checks were reworded for 9.0): both given, even an empty
 *   list, or neither, each refused in a sentence naming the command (with QEMU's trailing space).
 *
 * The texts before 10.0 come from QEMU's source of those releases, not from a running QEMU.
 */
export function migrationTarget(
  command: "migrate" | "migrate-incoming",
  args: {
    readonly uri?: string | undefined;
    readonly channels?: readonly MigrationChannel[] | undefined;
  },
  version: QemuVersionNumber,
): string {
  const refuse = (desc: string): never => {
    throw new QmpReplyError("GenericError", desc);
  };
  const channels = args.channels ?? [];
  if (!changedIn(version, "migrate-channels-checks-reworded")) {
    if (args.uri !== undefined && args.channels !== undefined) {
      refuse(
        `'uri' and 'channels' arguments are mutually exclusive; exactly one of the two should be present in '${command}' qmp command `,
      );
    }
    if (args.uri === undefined && channels.length === 0) {
      refuse(`neither 'uri' or 'channels' argument are specified in '${command}' qmp command `);
    }
  } else if ((args.uri === undefined) === (channels.length === 0)) {
    refuse("need either 'uri' or 'channels' argument");
  }
  if (args.uri !== undefined) return args.uri;
  if (!changedIn(version, "migrate-channels-main-entry")) {
    if (channels.length > 1) refuse("Channel list has more than one entries");
    return addressUri(channels[0]!.addr);
  }
  const main = channels.filter((c) => c["channel-type"] === "main");
  if (command === "migrate-incoming" && (channels.length !== 1 || main.length !== 1)) {
    refuse("Channel list must have only one entry, for type 'main'");
  }
  if (main.length > 1) refuse("Channel list has more than one main entry");
  const first = main[0];
  if (first === undefined) return refuse("Channel list has no main entry");
  return addressUri(first.addr);
}

/** The URI spelling of a migration address (`migrate_uri_parse` the other way round). */
function addressUri(addr: MigrationAddress): string {
  switch (addr.transport) {
    case "socket":
      switch (addr.type) {
        case "inet":
          return `tcp:${addr.host}:${addr.port}`;
        case "unix":
          return `unix:${addr.path}`;
        case "vsock":
          return `vsock:${addr.cid}:${addr.port}`;
        case "fd":
          return `fd:${addr.str}`;
      }
      break;
    case "exec":
      return `exec:${addr.args.join(" ")}`;
    case "rdma":
      return `rdma:${addr.host}:${addr.port}`;
    case "file":
      return `file:${addr.filename},offset=${addr.offset}`;
  }
  throw new QmpReplyError("GenericError", `unknown migration address: ${JSON.stringify(addr)}`);
}

/**
 * The capabilities `background-snapshot` refuses beside it (`check_caps_background_snapshot`,
 * 7.2 migration/migration.c, 10.0 migration/options.c), in QEMU's order; a release checks those
 * it has.
 */
const BACKGROUND_SNAPSHOT_INCOMPATIBLE = [
  "postcopy-ram",
  "dirty-bitmaps",
  "postcopy-blocktime",
  "late-block-activate",
  "return-path",
  "multifd",
  "pause-before-switchover",
  "auto-converge",
  "release-ram",
  "rdma-pin-all",
  "compress",
  "xbzrle",
  "x-colo",
  "validate-uuid",
  "zero-copy-send",
];

/** Statuses in which a migration is running (`migration_is_running`). */
const RUNNING = new Set(["setup", "active", "cancelling", "device", "pre-switchover"]);

interface Outgoing {
  status: string;
  uri: string;
  failure: MigrationFailure | undefined;
  /** The VM's state before the switch-over stopped it (to restore on cancel or failure). */
  stoppedFrom: RunState | undefined;
  startMs: number;
  setupTime: number;
  stopMs: number;
  totalTime: number;
  downtime: number;
  passes: number;
  pagesSent: number;
  normalSent: number;
  transferred: number;
  precopyBytes: number;
  downtimeBytes: number;
  mbps: number;
  pagesPerSecond: number;
  errorDesc: string | undefined;
  timer: unknown;
  /** Capabilities that shape the answer or the course, as they were when the migration started. */
  pauseBeforeSwitchover: boolean;
  xbzrle: boolean;
  compress: boolean;
  /** Pages holding data when the migration started. */
  dataPages: number;
  /** `expected-downtime`: the downtime limit when the migration started (nothing is dirtied). */
  expectedDowntime: number;
  /** `yank` shut the socket down: the next write fails. */
  yanked: boolean;
}

/** What a write to a socket that `yank` shut down reports (7.2.22 and 10.0.2). */
const YANKED_DESC = "Unable to write to socket: Broken pipe";

/** The migration subsystem of one simulated machine. */
export class SimMigration {
  readonly #host: DeviceHost;
  readonly #options: SimMigrationOptions;
  /**
   * The migration parameters (`query-migrate-parameters`), for the release; made on first use,
   * so that thousands of machines that never migrate do not each carry a copy.
   */
  #paramsMade: JsonObject | undefined;
  readonly #capabilities = new Map<string, boolean>();
  #out: Outgoing | undefined;
  #incoming: { socketAddresses: JsonObject[] | undefined; status: string | undefined } = {
    socketAddresses: undefined,
    status: undefined,
  };
  #disposed = false;
  /** `migrate` turned block migration on (blk/inc): it goes off when the migration ends. */
  #removeBlockOptions = false;
  /** An incoming migration is under way (its yank instance is registered). */
  #incomingUnderWay = false;

  constructor(host: DeviceHost, options: SimMigrationOptions) {
    this.#host = host;
    this.#options = options;
    const bandwidth = options.bandwidth;
    if (bandwidth !== undefined && !(bandwidth >= 0)) {
      throw new RangeError(`migration bandwidth: must be 0 or more bytes/s, got ${bandwidth}`);
    }
  }

  get #params(): JsonObject {
    this.#paramsMade ??= this.#present("MigrationParameters", {
      ...DEFAULT_PARAMETERS,
      "max-bandwidth": this.#options.bandwidth ?? DEFAULT_PARAMETERS["max-bandwidth"] ?? 0,
    });
    return this.#paramsMade;
  }

  /** `max-bandwidth` in bytes per second; 0 means no limit. */
  get #bandwidth(): number {
    const b = Number(this.#params["max-bandwidth"] ?? 0);
    return b > 0 ? b : Number.POSITIVE_INFINITY;
  }

  get #downtimeLimitMs(): number {
    return Number(this.#params["downtime-limit"] ?? 300);
  }

  // ------------------------------------------------------------------ parameters

  /** `query-migrate-parameters`: every parameter of the release. */
  queryParameters(): JsonObject {
    return { ...this.#params };
  }

  /**
   * `migrate-set-parameters`, its arguments already checked by the catalogue's validator for the
   * release (types and integer ranges). The merged values are checked as QEMU checks them; the
   * first failure is refused with QEMU's words and nothing changes. A null TLS setting reads
   * back as "". Allowed during a migration: a new `max-bandwidth` or `downtime-limit` applies
   * from its next step.
   */
  setParameters(args: JsonObject): void {
    const merged: JsonObject = { ...this.#params };
    // Before 9.0 the multifd compression levels were neither checked nor applied (QEMU forgot
    // them in migrate_params_test_apply and migrate_params_apply; 7.2.22 answers {} and keeps
    // the old level; fixed in March 2024, migration/options.c, first in 9.0).
    const levelsIgnored = !this.#host.core.profile.has("multifd-compression-levels-applied");
    for (const [k, value] of Object.entries(args)) {
      if (levelsIgnored && (k === "multifd-zlib-level" || k === "multifd-zstd-level")) continue;
      // Every numeric parameter is unsigned: QEMU's visitor takes a negative value modulo 2^64
      // (qobject_input_type_uint64, "for backward compatibility"), so -1 is 2^64 - 1 from here
      // on, in the checks and in query-migrate-parameters. (The narrower ones never get here
      // negative: the validator refused them, "expects uint8_t".)
      const negative = (typeof value === "number" || typeof value === "bigint") && value < 0;
      merged[k] = value === null ? "" : negative ? BigInt(value) + 2n ** 64n : value;
    }
    for (const [member, cName, ok, expects] of PARAMETER_CHECKS) {
      const v = merged[member];
      if ((typeof v === "number" || typeof v === "bigint") && !ok(BigInt(v), merged)) {
        throw new QmpReplyError("GenericError", `Parameter '${cName}' expects ${expects}`);
      }
    }
    this.#paramsMade = this.#present("MigrationParameters", merged);
  }

  get #version(): string {
    return this.#host.core.profile.id;
  }

  get #profile(): QemuProfile {
    return this.#host.core.profile;
  }

  #nowMs(): number {
    return Math.floor(this.#host.clock.nowMicros() / 1000);
  }

  /** Whether capability `name` is on. */
  capability(name: string): boolean {
    return this.#capabilities.get(name) ?? false;
  }

  /** Whether an outgoing migration is running (`migration_is_running`). */
  get running(): boolean {
    return this.#out !== undefined && RUNNING.has(this.#out.status);
  }

  /** The outgoing migration's status (`none` before any). */
  get status(): string {
    return this.#out?.status ?? "none";
  }

  /**
   * Whether `query-yank` lists the migration: QEMU registers its yank instance when an outgoing
   * migration starts (`qmp_migrate`) or an incoming one starts listening
   * (`qemu_start_incoming_migration`), and removes it when that migration ends.
   */
  get yankable(): boolean {
    return this.running || this.#incomingUnderWay;
  }

  /**
   * `yank` of the migration: QEMU shuts down the migration's socket channels (only sockets
   * register a yank function, migration/yank_functions.c), so an outgoing migration over
   * `tcp:`, `unix:` or `vsock:` fails at its next write: while memory is sent, at the next
   * window ("Unable to write to socket: Broken pipe"); paused in `pre-switchover`, only after
   * `migrate-continue`, through `device` and the last pass (7.2.22 then reports no reason,
   * 10.0.2 the same one). One into `exec:` or `fd:` goes on; a listening destination is not
   * affected. (All as 7.2.22 and 10.0.2 do it.)
   */
  yank(): void {
    const m = this.#out;
    if (m === undefined || !this.running || !/^(tcp|unix|vsock):/.test(m.uri)) return;
    m.yanked = true;
  }

  /** Stops every timer (the process ended). */
  dispose(): void {
    this.#disposed = true;
    if (this.#out?.timer !== undefined) this.#host.clock.clearTimer(this.#out.timer as never);
  }

  // ------------------------------------------------------------------ capabilities

  /**
   * `migrate-set-capabilities`, its arguments already checked by the catalogue's validator for
   * the release. Refused while a migration runs; the combinations QEMU 7.2 refuses
   * (`migrate_caps_check`) are refused with its words, and then nothing changes.
   */
  setCapabilities(caps: readonly MigrationCapabilityStatus[]): void {
    if (this.running) {
      throw new QmpReplyError("GenericError", "There's a migration process in progress");
    }
    const next = new Map(this.#capabilities);
    for (const c of caps) next.set(c.capability, c.state);
    const on = (name: string) => next.get(name) === true;
    const refuse = (desc: string) => {
      throw new QmpReplyError("GenericError", desc);
    };
    // 10.0's migrate_caps_check warns about the merged capabilities, so each set while
    // zero-blocks is on warns again (seen on 10.0.2; inside a QMP command, without the
    // program name).
    if (this.#profile.has("zero-blocks-deprecated") && on("zero-blocks")) {
      this.#host.stderr?.("warning: zero-blocks capability is deprecated\n");
    }
    if (on("postcopy-ram") && on("x-ignore-shared")) {
      refuse("Postcopy is not compatible with ignore-shared");
    }
    if (this.#profile.has("postcopy-multifd-refused") && on("postcopy-ram") && on("multifd")) {
      refuse("Postcopy is not yet compatible with multifd");
    }
    if (on("background-snapshot")) {
      // check_caps_background_snapshot, in its order (the host's write tracking is assumed).
      const other = BACKGROUND_SNAPSHOT_INCOMPATIBLE.find(on);
      if (other !== undefined) refuse(`Background-snapshot is not compatible with ${other}`);
    }
    if (on("zero-copy-send") && (!on("multifd") || on("compress") || on("xbzrle"))) {
      refuse("Zero copy only available for non-compressed non-TLS multifd migration");
    }
    // 8.1+ (migration/options.c): the capabilities only exist in those releases.
    if (on("switchover-ack") && !on("return-path")) {
      refuse("Capability 'switchover-ack' requires capability 'return-path'");
    }
    if (on("dirty-limit")) {
      if (on("auto-converge")) {
        refuse("dirty-limit conflicts with auto-converge either of then available currently");
      }
      // The simulated accelerator is TCG: no KVM dirty ring.
      refuse("dirty-limit requires KVM with accelerator property 'dirty-ring-size' set");
    }
    if (on("postcopy-preempt")) {
      if (!on("postcopy-ram")) refuse("Postcopy preempt requires postcopy-ram");
      if (on("compress")) refuse("Postcopy preempt not compatible with compress");
    }
    if (on("multifd") && on("compress")) refuse("Multifd is not compatible with compress");
    if (this.#profile.has("multifd-xbzrle-refused") && on("multifd") && on("xbzrle")) {
      refuse("Multifd is not compatible with xbzrle");
    }
    if (on("mapped-ram")) {
      if (on("xbzrle")) refuse("Mapped-ram migration is incompatible with xbzrle");
      if (on("postcopy-ram")) refuse("Mapped-ram migration is incompatible with postcopy");
    }
    for (const [k, v] of next) this.#capabilities.set(k, v);
  }

  /** `query-migrate-capabilities`: every capability of the release, in enum order. */
  queryCapabilities(): JsonValue[] {
    const names = enumValuesIn("MigrationCapability", this.#version) ?? [
      ...this.#capabilities.keys(),
    ];
    return names.map((capability) => ({ capability, state: this.capability(capability) }));
  }

  // ------------------------------------------------------------------ outgoing

  #setStatus(status: string): void {
    const m = this.#out;
    if (m === undefined) return;
    m.status = status;
    if (this.capability("events")) this.#host.emit("MIGRATION", { status });
  }

  /** A dirty-bitmap sync: the next pass over memory (MIGRATION_PASS, `dirty-sync-count`). */
  #pass(): void {
    const m = this.#out;
    if (m === undefined) return;
    m.passes += 1;
    if (this.capability("events")) this.#host.emit("MIGRATION_PASS", { pass: m.passes });
  }

  #schedule(fn: () => void, delayMs: number): void {
    const m = this.#out;
    if (m === undefined) return;
    m.timer = this.#host.clock.setTimer(() => {
      m.timer = undefined;
      if (this.#disposed || this.#host.core.hasExited || this.#out !== m) return;
      // The migration thread notices a cancel at its next step (migration_iteration_finish).
      if (m.status === "cancelling") this.#finishCancel(m);
      else fn();
    }, delayMs);
  }

  /**
   * `migrate {uri}` (7.2 `qmp_migrate`, `migrate_prepare`): refused while one runs, on a
   * destination, and after a completed one left the VM in `postmigrate`. MIGRATION setup comes
   * before the reply; an unknown protocol or an address the transport cannot use then fails it
   * at once (from 10.0 most of them are refused before anything starts). `blk`/`inc` (7.2)
   * turn on the `block` capability (and `block-incremental`) for this migration.
   */
  migrate(
    uri: string,
    options: {
      resume?: boolean | undefined;
      blk?: boolean | undefined;
      inc?: boolean | undefined;
      /** The target came as `channels`, not as a URI to parse. */
      viaChannels?: boolean | undefined;
    } = {},
  ): void {
    const core = this.#host.core;
    const knownProtocol =
      MIGRATION_PROTOCOLS.some((p) => uri.startsWith(p)) ||
      (this.#profile.has("migration-file-uri") && uri.startsWith("file:"));
    if (this.#profile.has("migrate-uri-checked-first") && options.viaChannels !== true) {
      // 10.0 parses the URI before anything starts: no MIGRATION event, the status stays.
      const error = uriParseError10(uri);
      if (error !== undefined) throw new QmpReplyError("GenericError", error);
    }
    if (options.resume === true) {
      // Only a post-copy migration paused by a broken stream can resume; none is simulated.
      throw new QmpReplyError("GenericError", "Cannot resume if there is no paused migration");
    }
    if (this.running) {
      throw new QmpReplyError("GenericError", "There's a migration process in progress");
    }
    if (core.state === "inmigrate") {
      throw new QmpReplyError("GenericError", "Guest is waiting for an incoming migration");
    }
    if (core.state === "postmigrate") {
      throw new QmpReplyError(
        "GenericError",
        "Can't migrate the vm that was paused due to previous migration",
      );
    }
    // qemu_savevm_state_blocked: the first non-migratable device, before MIGRATION setup.
    const blocker = this.#options.blockers?.()[0];
    if (blocker !== undefined) {
      throw new QmpReplyError(
        "GenericError",
        `State blocked by non-migratable device '${blocker}'`,
      );
    }
    if (options.blk === true || options.inc === true) {
      // 7.2 migrate_prepare: not on top of block migration already configured.
      if (this.capability("block") || this.#params["block-incremental"] === true) {
        throw new QmpReplyError(
          "GenericError",
          "Command options are incompatible with current migration capabilities",
        );
      }
      this.#capabilities.set("block", true);
      if (options.inc === true) this.#params["block-incremental"] = true;
      this.#removeBlockOptions = true;
    }
    if (this.#out?.timer !== undefined) this.#host.clock.clearTimer(this.#out.timer as never);
    this.#out = {
      status: "none",
      uri,
      failure: undefined,
      stoppedFrom: undefined,
      startMs: this.#nowMs(),
      setupTime: 0,
      stopMs: 0,
      totalTime: 0,
      downtime: 0,
      passes: 0,
      pagesSent: 0,
      normalSent: 0,
      transferred: 0,
      precopyBytes: 0,
      downtimeBytes: 0,
      mbps: 0,
      pagesPerSecond: 0,
      errorDesc: undefined,
      timer: undefined,
      pauseBeforeSwitchover: this.capability("pause-before-switchover"),
      xbzrle: this.capability("xbzrle"),
      compress: this.capability("compress"),
      expectedDowntime: this.#downtimeLimitMs,
      yanked: false,
      dataPages: Math.min(this.#options.normalPages(), this.#totalPages),
    };
    this.#setStatus("setup");
    if (!knownProtocol) {
      // The state machine has already entered setup; a bad URI fails it (no error-desc), and
      // the block options go (block_cleanup_parameters).
      this.#cleanUpBlockOptions();
      this.#setStatus("failed");
      throw new QmpReplyError("GenericError", "Parameter 'uri' expects a valid migration protocol");
    }
    const refused =
      options.viaChannels === true
        ? undefined
        : this.#profile.has("migration-start-failure-texts")
          ? startFailure10(uri)
          : startFailure72(uri);
    if (refused !== undefined) {
      // migrate_fd_error: `failed` with the reason; the block options stay (nothing cleans up).
      this.#out.errorDesc = refused.desc;
      if (refused.stderr !== undefined) this.#host.stderr?.(refused.stderr);
      this.#setStatus("failed");
      throw new QmpReplyError("GenericError", refused.desc);
    }
    const m = this.#out;
    m.failure = this.#options.failure?.(uri);
    this.#schedule(() => this.#start(m), SETUP_MS);
  }

  /** The end of setup: the first sync, `active`, and the first iteration. */
  #start(m: Outgoing): void {
    if (m.yanked) {
      this.#fail(m, YANKED_DESC);
      return;
    }
    if (m.failure?.phase === "connect") {
      this.#fail(m, m.failure.desc);
      return;
    }
    m.setupTime = this.#nowMs() - m.startMs;
    this.#pass();
    this.#setStatus("active");
    this.#iterate(m, true);
  }

  get #totalPages(): number {
    return Math.ceil(this.#options.ramBytes / PAGE_SIZE);
  }

  /** How many of the first `pages` pages hold data (data pages are spread evenly). */
  #normalWithin(m: Outgoing, pages: number): number {
    const total = this.#totalPages;
    return total === 0 ? 0 : Math.floor((pages * m.dataPages) / total);
  }

  /** Sends up to `budget` wire bytes of pages; returns the bytes sent. */
  #sendPages(m: Outgoing, budget: number, all: boolean): { bytes: number; pages: number } {
    const total = this.#totalPages;
    let pages = 0;
    let bytes = 0;
    while (m.pagesSent + pages < total) {
      const index = m.pagesSent + pages;
      const normal = this.#normalWithin(m, index + 1) > this.#normalWithin(m, index);
      const cost = normal ? NORMAL_PAGE_WIRE : ZERO_PAGE_WIRE;
      if (!all && pages > 0 && bytes + cost > budget) break;
      bytes += cost;
      pages += 1;
    }
    m.normalSent = this.#normalWithin(m, m.pagesSent + pages);
    m.pagesSent += pages;
    this.#account(m, bytes);
    return { bytes, pages };
  }

  /** Counts `bytes` as sent while the guest ran (pre-copy) or while it was stopped (downtime). */
  #account(m: Outgoing, bytes: number): void {
    m.transferred += bytes;
    if (this.#host.core.state === "running") m.precopyBytes += bytes;
    else m.downtimeBytes += bytes;
  }

  #remainingBytes(m: Outgoing): number {
    return Math.max(0, this.#options.ramBytes - m.pagesSent * PAGE_SIZE);
  }

  /**
   * One iteration of the migration thread (`migration_iteration_run`): once what remains fits in
   * the downtime limit at the migration bandwidth, switch over; otherwise send one window's worth
   * and come back when it has gone out. The first iteration always sends.
   */
  #iterate(m: Outgoing, first: boolean): void {
    if (m.yanked) {
      this.#fail(m, YANKED_DESC);
      return;
    }
    if (m.failure?.phase === "transfer") {
      this.#fail(m, m.failure.desc);
      return;
    }
    const threshold = (this.#bandwidth * this.#downtimeLimitMs) / 1000;
    if (!first && this.#remainingBytes(m) <= threshold) {
      this.#switchOver(m);
      return;
    }
    const sent = this.#sendPages(m, (this.#bandwidth * WINDOW_MS) / 1000, false);
    const ms = Math.max(1, Math.ceil((sent.bytes * 1000) / this.#bandwidth));
    m.mbps = (sent.bytes * 8) / ms / 1000;
    m.pagesPerSecond = Math.round((sent.pages * 1000) / ms);
    this.#schedule(() => this.#iterate(m, false), ms);
  }

  /**
   * `migration_completion`: the VM stops in `finish-migrate` (STOP if it ran), the last sync,
   * the rest of memory and the device state go out while it is stopped, then `completed` and
   * `postmigrate`.
   */
  #switchOver(m: Outgoing): void {
    const core = this.#host.core;
    m.stopMs = this.#nowMs();
    m.stoppedFrom = core.state;
    core.vmStop("finish-migrate");
    if (!core.runState.is("finish-migrate")) core.runState.set("finish-migrate");
    if (m.pauseBeforeSwitchover) {
      // migration_maybe_pause: wait, stopped, until migrate-continue.
      this.#setStatus("pre-switchover");
      return;
    }
    this.#sendDeviceState(m);
  }

  /**
   * The last sync, the rest of memory and the device state (in the `device` status after a
   * pre-switchover pause, and always from 10.0: commit 48814111366b), then `completed`.
   */
  #sendDeviceState(m: Outgoing): void {
    if (m.pauseBeforeSwitchover || this.#profile.has("migration-device-status"))
      this.#setStatus("device");
    this.#pass();
    const rest = this.#sendPages(m, 0, true).bytes + this.#options.deviceStateBytes;
    this.#account(m, this.#options.deviceStateBytes);
    const downtime = Math.ceil((rest * 1000) / this.#bandwidth);
    this.#schedule(() => {
      // A yanked socket fails the last writes (7.2 gives no reason there).
      if (m.yanked)
        this.#fail(
          m,
          this.#profile.has("migration-yank-reason-at-switchover") ? YANKED_DESC : undefined,
        );
      else this.#complete(m);
    }, downtime);
  }

  /**
   * 7.2 `block_cleanup_parameters`: the `block` capability and `block-incremental` that
   * `migrate blk/inc` turned on go off again (at the end of the migration, or on a bad URI).
   */
  #cleanUpBlockOptions(): void {
    if (!this.#removeBlockOptions) return;
    this.#removeBlockOptions = false;
    this.#capabilities.set("block", false);
    if (this.#params["block-incremental"] !== undefined) this.#params["block-incremental"] = false;
  }

  #complete(m: Outgoing): void {
    const now = this.#nowMs();
    m.totalTime = now - m.startMs;
    m.downtime = now - m.stopMs;
    // Throughput over the whole migration after setup (migration_calculate_complete).
    const transferMs = m.totalTime - m.setupTime;
    m.mbps = transferMs > 0 ? (m.transferred * 8) / transferMs / 1000 : 0;
    m.pagesPerSecond = 0;
    m.stoppedFrom = undefined;
    this.#cleanUpBlockOptions();
    this.#setStatus("completed");
    this.#host.core.runState.set("postmigrate");
  }

  /** The migration failed: `failed` with its reason (also on QEMU's stderr); the VM goes on. */
  #fail(m: Outgoing, desc: string | undefined): void {
    m.errorDesc = desc;
    if (desc !== undefined) this.#host.stderr?.(`qemu-system-x86_64: ${desc}\n`);
    this.#restoreVm(m);
    this.#cleanUpBlockOptions();
    this.#setStatus("failed");
  }

  /** After a failed or cancelled switch-over the VM returns to where it was (running: RESUME). */
  /**
   * A VM that ran runs again. One that did not stays stopped: in `postmigrate` up to 9.x
   * (7.2 `migration_iteration_finish`; seen on 7.2.22 after a cancel or a failure past the
   * switch-over of a `-S` machine), in the state it had from 10.0 (seen on 10.0.2: `prelaunch`).
   */
  #restoreVm(m: Outgoing): void {
    const from = m.stoppedFrom;
    m.stoppedFrom = undefined;
    const core = this.#host.core;
    if (from === undefined || !core.runState.is("finish-migrate")) return;
    if (from === "running") core.vmStart();
    else
      core.runState.set(
        this.#profile.has("migration-restores-stopped-state") ? from : "postmigrate",
      );
  }

  /**
   * `migrate-continue {state}`: a migration paused in `pre-switchover` goes on. Refused unless
   * the migration is in `state` (7.2 `qmp_migrate_continue`).
   */
  continue(state: string): void {
    const m = this.#out;
    const current = m?.status ?? "none";
    if (current !== state) {
      throw new QmpReplyError("GenericError", `Migration not in expected state: ${current}`);
    }
    // Any other state that matches (even `none`, before any migration) is answered {} and
    // nothing happens (qmp_migrate_continue only wakes a paused migration thread).
    if (m === undefined || state !== "pre-switchover") return;
    this.#sendDeviceState(m);
  }

  /**
   * `migrate_cancel`: `cancelling` before the reply; the migration thread notices at its next
   * step and ends in `cancelled` (7.2.22: about 100 ms later for a rate-limited migration).
   * Nothing happens when no migration runs.
   */
  cancel(): void {
    const m = this.#out;
    if (m === undefined || !this.running || m.status === "cancelling") return;
    this.#setStatus("cancelling");
    if (m.timer === undefined) this.#finishCancel(m);
  }

  #finishCancel(m: Outgoing): void {
    this.#restoreVm(m);
    this.#cleanUpBlockOptions();
    this.#setStatus("cancelled");
  }

  /**
   * The stream broke (or the destination refused it) while the migration ran: `failed`, with
   * `error-desc` when `desc` is given (QEMU has failures without a reason too, e.g. a bad URI).
   * For tests and `x-sim-inject`; does nothing when no migration runs.
   */
  failNow(desc?: string | undefined): void {
    const m = this.#out;
    if (m === undefined || !this.running) return;
    if (m.timer !== undefined) this.#host.clock.clearTimer(m.timer as never);
    m.timer = undefined;
    this.#fail(m, desc);
  }

  // ------------------------------------------------------------------ incoming

  /**
   * `migrate-incoming` started listening on `uri`: `query-migrate` reports the addresses
   * (`socket-address`, as the listener bound them) until the stream arrives.
   */
  listen(uri: string): void {
    this.#incomingUnderWay = true;
    // 10.0 reports the destination as `setup` while it listens; 7.2 reports no status yet.
    this.#incoming = {
      socketAddresses: socketAddressesOf(uri),
      status: this.#profile.has("incoming-listening-setup-status") ? "setup" : undefined,
    };
  }

  /** The incoming side reached `status` (e.g. `completed`): it replaces the addresses. */
  incomingStatus(status: string): void {
    if (status === "completed" || status === "failed" || status === "cancelled")
      this.#incomingUnderWay = false;
    this.#incoming = { socketAddresses: undefined, status };
  }

  // ------------------------------------------------------------------ query-migrate

  /** `query-migrate`: the destination's members first, then the source's (see the module table). */
  query(): JsonObject {
    const info: JsonObject = {};
    if (this.#incoming.socketAddresses !== undefined) {
      info["socket-address"] = this.#incoming.socketAddresses;
    }
    if (this.#incoming.status !== undefined) info.status = this.#incoming.status;
    // Whatever the status (even before any migration): why a migration is impossible now, the
    // newest device first (qemu_savevm_non_migratable_list prepends).
    const blockers = this.#options.blockers?.() ?? [];
    if (blockers.length > 0) {
      info["blocked-reasons"] = blockers.map((p) => `non-migratable device: ${p}`).reverse();
    }
    const m = this.#out;
    if (m !== undefined && m.status !== "none") {
      info.status = m.status;
      switch (m.status) {
        case "active":
        case "cancelling":
        case "device":
        case "pre-switchover":
        case "completed":
          this.#timeInfo(info, m);
          this.#ramInfo(info, m);
          break;
        case "failed":
          if (m.errorDesc !== undefined) info["error-desc"] = m.errorDesc;
          break;
      }
    }
    return this.#present("MigrationInfo", info);
  }

  /** `populate_time_info`. */
  #timeInfo(info: JsonObject, m: Outgoing): void {
    info["setup-time"] = m.setupTime;
    if (m.status === "completed") {
      info["total-time"] = m.totalTime;
      info.downtime = m.downtime;
    } else {
      info["total-time"] = this.#nowMs() - m.startMs;
      info["expected-downtime"] = m.expectedDowntime;
    }
  }

  /** `populate_ram_info`: the counters, and the blocks of the capabilities that are on. */
  #ramInfo(info: JsonObject, m: Outgoing): void {
    const completed = m.status === "completed";
    info.ram = this.#present("MigrationStats", {
      transferred: m.transferred,
      remaining: completed ? 0 : this.#remainingBytes(m),
      total: this.#options.ramBytes,
      duplicate: m.pagesSent - m.normalSent,
      skipped: 0,
      normal: m.normalSent,
      "normal-bytes": m.normalSent * PAGE_SIZE,
      "dirty-pages-rate": 0,
      mbps: m.mbps,
      "dirty-sync-count": m.passes,
      "postcopy-requests": 0,
      "page-size": PAGE_SIZE,
      "multifd-bytes": 0,
      "pages-per-second": m.pagesPerSecond,
      "precopy-bytes": m.precopyBytes,
      "downtime-bytes": m.downtimeBytes,
      "postcopy-bytes": 0,
      "dirty-sync-missed-zero-copy": 0,
    });
    if (m.xbzrle) {
      // Nothing is dirtied twice in the simulated guest, so XBZRLE never encodes a page.
      info["xbzrle-cache"] = this.#present("XBZRLECacheStats", {
        "cache-size": Number(this.#params["xbzrle-cache-size"] ?? 0),
        bytes: 0,
        pages: 0,
        "cache-miss": 0,
        "cache-miss-rate": 0,
        "encoding-rate": 0,
        overflow: 0,
      });
    }
    if (m.compress) {
      info.compression = this.#present("CompressionStats", {
        pages: 0,
        busy: 0,
        "busy-rate": 0,
        "compressed-size": 0,
        "compression-rate": 0,
      });
    }
  }

  /**
   * `data` reduced to the members release has, in the schema's order (QEMU's generated visitor
   * inserts them so, which decides how keys sharing a QDict bucket print, §1.1).
   */
  #present(owner: string, data: JsonObject): JsonObject {
    const version = this.#version;
    const kept: JsonObject = {};
    for (const [k, v] of Object.entries(data)) {
      if (versionHasMember(owner, k, version) !== false) kept[k] = v;
    }
    return inSchemaOrder(owner, kept, version);
  }
}

/**
 * The addresses a listener on `uri` reports (`SocketAddress`, as QEMU fills it from the bound
 * socket): `tcp:HOST:PORT` → inet with the port as a string and `ipv4` or `ipv6` by the host's
 * family (a host name counts as IPv4, `tcp::PORT` listens on both, IPv6 first); `unix:PATH` →
 * unix. Port 0 stands for the port the kernel would pick: the simulator picks one in the
 * ephemeral range. Other transports report nothing.
 */
function socketAddressesOf(uri: string): JsonObject[] | undefined {
  if (uri.startsWith("unix:")) return [{ type: "unix", path: uri.slice("unix:".length) }];
  if (!uri.startsWith("tcp:")) return undefined;
  const rest = uri.slice("tcp:".length);
  const bracketed = /^\[([^\]]*)\]:(\d+)/.exec(rest);
  const plain = /^([^:]*):(\d+)/.exec(rest);
  const host = bracketed?.[1] ?? plain?.[1] ?? "";
  const portText = bracketed?.[2] ?? plain?.[2] ?? "0";
  // Each listener of a `tcp:HOST:0` gets its own port, as the kernel gives each socket one.
  const port = () => (Number(portText) === 0 ? String(32768 + (nextPort++ % 28232)) : portText);
  const inet = (h: string, family: "ipv4" | "ipv6"): JsonObject => ({
    type: "inet",
    host: h,
    port: port(),
    [family]: true,
  });
  if (host === "") return [inet("::", "ipv6"), inet("0.0.0.0", "ipv4")];
  if (host.includes(":")) return [inet(host, "ipv6")];
  if (host === "0") return [inet("0.0.0.0", "ipv4")];
  if (host === "localhost") return [inet("127.0.0.1", "ipv4")];
  return [inet(host, "ipv4")];
}

/** The next simulated ephemeral port offset (deterministic within a process). */
let nextPort = 12_345;
