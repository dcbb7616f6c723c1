/**
 * Test support: seeded random QMP sessions for the differential fuzz (`differential-fuzz.test.ts`).
 * A session is a list of commands, each one the simulator implements, with arguments drawn from
 * a small model of the command: valid values, odd ones (empty, out of range, negative, huge,
 * malformed URIs and protocols), members left out or added, every JSON type in every place.
 * Values are JSON text, not JavaScript values, so that 2^64 - 1 or -0 reach the server as
 * written.
 *
 * The same seed gives the same sessions (mulberry32, a small well-known PRNG), so a mismatch
 * found once is found again.
 */
import { qemuSchema } from "../../src/generated/index.js";
import type { ScenarioStep } from "./scenario.js";

/** A seeded pseudo-random source (mulberry32). */
export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The machine a session runs on; both sides get the same command line. */
export type FuzzMachine = "none" | "pc";

/** What the arguments of a command are drawn from. */
interface MemberModel {
  readonly required?: boolean;
  /** JSON texts. */
  readonly values: readonly string[];
  /** JSON texts not to draw here, not even as "any JSON value". */
  readonly avoid?: readonly string[];
}

type CommandModel = Readonly<Record<string, MemberModel>>;

const q = (s: string) => JSON.stringify(s);

/** Integers at and around the edges of every integer type QEMU's visitors check. */
const INTS = [
  "0",
  "1",
  "-1",
  "9",
  "10",
  "100",
  "255",
  "256",
  "4096",
  "65536",
  "2147483647",
  "4294967295",
  "4294967296",
  "9007199254740993",
  "9223372036854775807",
  "-9223372036854775808",
  "18446744073709551615",
  "18446744073709551616",
  "1.5",
  "-0",
  // Not `1e3` or `2.0`: QEMU's parser keeps them floats ("expects uint64"), while qmpkit's
  // decoder makes them the integers they equal, so the two answer differently (a defect of
  // the decoder, src/wire/json-parser.ts, not of the simulator's checks).
];

/** One value of every JSON type (and a few odd spellings). */
const ANY_JSON = [
  "null",
  "true",
  "false",
  "0",
  "-1",
  "3.25",
  "18446744073709551615",
  '""',
  '"x"',
  '"on"',
  "[]",
  '["x"]',
  "{}",
  '{"a": 1}',
];

const BOOLS = ["true", "false"];

/**
 * Migration URIs that QEMU refuses before a migration would reach the network: unknown
 * protocols and addresses it cannot parse. Left out on purpose: URIs that start a migration
 * (`exec:…`, a parseable `tcp:`/`unix:`/`vsock:` address, a `file:` in a directory that exists),
 * because how far it gets before the next command depends on timing and on the host; and a
 * parseable `rdma:` address, whose answer depends on the host's RDMA devices.
 */
const BAD_URIS = [
  "",
  "bogus:x",
  "tcp:",
  "tcp:host",
  "tcp:127.0.0.1",
  "tcp::",
  "tcp:[::1",
  "tcp:[::1]",
  "tcp:host:",
  "unix:",
  "vsock:",
  "vsock:x",
  "vsock:1",
  "fd:",
  "fd:nosuch",
  "fd:migfd",
  "fd:99999",
  "file:",
  "file:/nonexistent-qmpkit/dir/x",
  "rdma:",
  "rdma:host",
  "TCP:host:1",
  " tcp:1",
  "tcp:host:1,to=x",
  "tcp:host:1,to=5x",
  "tcp:host:1,ipv4=yes",
  "tcp:host:1,ipv6=on,,x",
  "vsock:1:2,x",
  "file:/tmp,offset=x",
].map(q);

/** URIs for `migrate-incoming`, refused on a machine started without `-incoming`. */
const INCOMING_URIS = [...BAD_URIS, q("tcp:127.0.0.1:0"), q("defer"), q("exec:cat")];

const MIGRATION_STATUSES = [
  "none",
  "setup",
  "cancelling",
  "cancelled",
  "active",
  "postcopy-active",
  "completed",
  "failed",
  "pre-switchover",
  "device",
  "bogus",
].map(q);

/** Every migration capability of 7.2 and of 10.0 (the catalogue's), and one neither has. */
const CAPABILITIES = [
  ...new Set(
    ["7.2.22", "10.0.2"].flatMap((version) => {
      const d = qemuSchema
        .modelFor(version)
        .definitions.find((x) => x.name === "MigrationCapability");
      return d?.kind === "enum" ? d.values.map((v) => v.name) : [];
    }),
  ),
  "bogus",
];

function capabilityLists(): string[] {
  const lists = ["[]", "[{}]", '[{"capability": "events"}]', '{"capability": "events"}'];
  for (const c of CAPABILITIES) {
    lists.push(`[{"capability": ${q(c)}, "state": true}]`);
    lists.push(`[{"capability": ${q(c)}, "state": false}]`);
  }
  lists.push('[{"capability": "events", "state": true}, {"capability": "xbzrle", "state": true}]');
  lists.push(
    '[{"capability": "multifd", "state": true}, {"capability": "compress", "state": true}]',
  );
  lists.push('[{"capability": "events", "state": "yes"}]');
  lists.push('[{"capability": "events", "state": true, "extra": 1}]');
  return lists;
}

const NAMES = ["", "x", "cd0", "cdrom0", "net0", "n0", "balloon0", "d0", "disk0", "nope"].map(q);

/** `migrate-set-parameters`: every parameter of 7.2 and 10.0, each with valid and odd values. */
const PARAMETERS: CommandModel = Object.fromEntries(
  [
    ...[
      "announce-initial",
      "announce-max",
      "announce-rounds",
      "announce-step",
      "compress-level",
      "compress-threads",
      "decompress-threads",
      "throttle-trigger-threshold",
      "cpu-throttle-initial",
      "cpu-throttle-increment",
      "max-bandwidth",
      "avail-switchover-bandwidth",
      "downtime-limit",
      "x-checkpoint-delay",
      "multifd-channels",
      "xbzrle-cache-size",
      "max-postcopy-bandwidth",
      "max-cpu-throttle",
      "multifd-zlib-level",
      "multifd-zstd-level",
      "multifd-qatzip-level",
      "x-vcpu-dirty-limit-period",
      "vcpu-dirty-limit",
    ].map((k) => [k, { values: INTS }] as const),
    ...["compress-wait-thread", "cpu-throttle-tailslow", "block-incremental", "direct-io"].map(
      (k) => [k, { values: BOOLS }] as const,
    ),
    ...["tls-creds", "tls-hostname", "tls-authz"].map(
      (k) => [k, { values: ["null", '""', '"x"'] }] as const,
    ),
    [
      "multifd-compression",
      { values: ["none", "zlib", "zstd", "qpl", "uadk", "qatzip", "x"].map(q) },
    ],
    ["mode", { values: ["normal", "cpr-reboot", "cpr-transfer", "x"].map(q) }],
    ["zero-page-detection", { values: ["none", "legacy", "multifd", "x"].map(q) }],
    [
      "block-bitmap-mapping",
      {
        values: [
          "[]",
          '[{"node-name": "n", "alias": "a", "bitmaps": []}]',
          '[{"node-name": "n", "alias": "a", "bitmaps": [{"name": "b", "alias": "c"}]}]',
          '[{"node-name": "n", "alias": "a"}]',
        ],
      },
    ],
  ].map(([k, m]) => [k, m]),
);

/**
 * The commands the simulator implements, and their arguments. Left out: `query-commands` and
 * `query-qmp-schema`, whose answer is not a check of arguments or state but a listing of what
 * the simulator has (a subset of QEMU; compared by the schema tests); and `balloon`, because the
 * simulated guest runs a balloon driver that follows the target (BALLOON_CHANGE) where SeaBIOS
 * has none (and 10.0 names the argument `value` in its error where the simulator says `target`,
 * a divergence of the balloon model).
 */
const COMMANDS: Readonly<Record<string, CommandModel>> = {
  "query-version": {},
  "query-name": {},
  "query-status": {},
  stop: {},
  cont: {},
  system_reset: {},
  system_powerdown: {},
  system_wakeup: {},
  quit: {},
  "set-action": {
    reboot: { values: ["reset", "shutdown", "x"].map(q) },
    shutdown: { values: ["poweroff", "pause", "x"].map(q) },
    panic: { values: ["pause", "shutdown", "none", "exit-failure", "x"].map(q) },
    watchdog: {
      values: ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi", "x"].map(q),
    },
  },
  "watchdog-set-action": {
    action: {
      required: true,
      values: ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi", "x"].map(q),
    },
  },
  // Not the id "": QEMU finds something there (" is not a device"), a divergence of the device
  // model.
  eject: {
    device: { values: NAMES },
    id: { values: NAMES.filter((n) => n !== '""'), avoid: ['""'] },
    force: { values: BOOLS },
  },
  // Not the PCI devices: the simulated guest acks their unplug after 10 ms of run time, as an
  // OS does, and SeaBIOS never does. Not "": QEMU finds a device there (" is not a hotpluggable
  // device") where the simulator finds none, a divergence of the device model.
  device_del: {
    id: { required: true, values: ["x", "cd0", "cdrom0", "n0", "nope"].map(q), avoid: ['""'] },
  },
  "query-rx-filter": { name: { values: NAMES } },
  "query-balloon": {},
  "migrate-set-capabilities": { capabilities: { required: true, values: capabilityLists() } },
  migrate: {
    uri: { required: true, values: BAD_URIS },
    detach: { values: BOOLS },
    resume: { values: BOOLS },
    blk: { values: BOOLS },
    inc: { values: BOOLS },
  },
  "migrate-continue": { state: { required: true, values: MIGRATION_STATUSES } },
  migrate_cancel: {},
  "migrate-incoming": { uri: { required: true, values: INCOMING_URIS } },
  "query-migrate": {},
  "query-migrate-capabilities": {},
  "migrate-set-parameters": PARAMETERS,
  "query-migrate-parameters": {},
  "dump-guest-memory": {
    paging: { required: true, values: BOOLS },
    protocol: {
      required: true,
      values: [
        "file:/dev/null",
        "file:/dev/null",
        "file:",
        "file:/nonexistent-qmpkit/dir/x",
        "fd:",
        "fd:nosuch",
        "tcp:1",
        "",
        "/dev/null",
      ].map(q),
    },
    // Only false: a detached dump's DUMP_COMPLETED comes after the reply, at a time that
    // depends on the host.
    detach: { values: ["false"] },
    // Not a negative `begin`: 7.2.22 refuses it with a GLib assertion on stderr, 10.0.2 answers
    // a dump whose `completed` stays 0; neither is modelled.
    begin: { values: ["0", "4096", "1048576", "4294705152", "18446744073709551615"] },
    length: { values: ["0", "4096", "-1", "1048576", "67108864"] },
    format: {
      values: [
        "elf",
        "kdump-zlib",
        "kdump-lzo",
        "kdump-snappy",
        "kdump-raw-zlib",
        "win-dmp",
        "x",
      ].map(q),
    },
  },
  "query-dump": {},
  "block-stream": {
    // Not the empty CD-ROM drive `cd0`: QEMU refuses it ("Device 'cd0' has no medium"), the
    // simulator's drives always have one; not `backing-file` or `base`: QEMU refuses them on a
    // drive without a backing chain ("backing file specified, but streaming the entire chain",
    // "Can't find 'b' in the backing chain"), the simulator takes them. Divergences of the
    // block model.
    device: { required: true, values: NAMES.filter((n) => n !== q("cd0")) },
    "job-id": { values: ['"j1"', '"j2"', '""', '"1x"'] },
    speed: { values: ["0", "1", "-1", "1048576"] },
    "on-error": { values: ["report", "ignore", "enospc", "stop", "auto", "x"].map(q) },
    "auto-finalize": { values: BOOLS },
    "auto-dismiss": { values: BOOLS },
  },
  "block-job-cancel": {
    device: { required: true, values: [...NAMES, '"j1"'] },
    force: { values: BOOLS },
  },
  "query-block-jobs": {},
  "query-yank": {},
  // Not the monitor's own chardev: yanking it cuts the connection the reply travels on.
  yank: {
    instances: {
      required: true,
      values: [
        "[]",
        '[{"type": "migration"}]',
        '[{"type": "block-node", "node-name": "d0"}]',
        '[{"type": "block-node", "node-name": "nope"}]',
        '[{"type": "chardev", "id": "nope"}]',
        '[{"type": "chardev"}]',
        '[{"type": "bogus"}]',
        '{"type": "migration"}',
      ],
    },
  },
  "migrate-pause": {},
  "migrate-recover": { uri: { required: true, values: INCOMING_URIS } },
};

/** The names of the commands a fuzzed session draws from. */
export const FUZZED_COMMANDS: readonly string[] = Object.keys(COMMANDS);

const EXTRA_NAMES = ["bogus", "x-y", "id", "arguments", "uri", "device", "value"];

/** What a session may not draw, for the QEMU it runs against. */
export interface FuzzOptions {
  /**
   * No `rdma:` URI: QEMU 10.0.2 aborts on one it cannot parse (`migrate_uri_parse` frees the
   * address twice: "free(): invalid pointer"), and nothing is left to compare after that.
   */
  withoutRdma?: boolean | undefined;
}

/** One request's text: a command with fuzzed arguments (or none), sometimes with an id. */
function request(random: SeededRandom, name: string, options: FuzzOptions): string {
  const model = COMMANDS[name] ?? {};
  const members = Object.entries(model);
  const parts: string[] = [];
  for (const [member, m] of members) {
    // Required members are nearly always there; optional ones sometimes.
    if (m.required === true ? random.chance(0.92) : random.chance(0.3)) {
      const values =
        options.withoutRdma === true ? m.values.filter((v) => !v.startsWith('"rdma:')) : m.values;
      const value = random.chance(0.1)
        ? random.pick(ANY_JSON.filter((v) => !(m.avoid ?? []).includes(v)))
        : random.pick(values);
      parts.push(`${q(member)}: ${value}`);
    }
  }
  if (random.chance(0.08)) parts.push(`${q(random.pick(EXTRA_NAMES))}: ${random.pick(ANY_JSON)}`);
  const id = random.chance(0.2) ? `, "id": ${random.pick(['"a"', "1", "[1]", "{}"])}` : "";
  const shape = random.int(40);
  let args: string | undefined;
  if (shape === 0) args = random.pick(["[]", '"x"', "null", "1"]);
  else if (shape === 1) args = "{}";
  else if (parts.length > 0 || random.chance(0.1)) args = `{${parts.join(", ")}}`;
  return `{"execute": ${q(name)}${args === undefined ? "" : `, "arguments": ${args}`}${id}}`;
}

/**
 * The commands of one session: `length` requests, drawn with a bias towards the commands whose
 * checks are the point (migration, dump). `quit` only ever comes last.
 */
export function fuzzSession(
  random: SeededRandom,
  length: number,
  options: FuzzOptions = {},
): ScenarioStep[] {
  const weighted = [
    ...FUZZED_COMMANDS.filter((n) => n !== "quit"),
    ...["migrate", "migrate", "migrate-set-parameters", "migrate-set-parameters"],
    ...["dump-guest-memory", "dump-guest-memory", "migrate-set-capabilities", "query-migrate"],
  ];
  const steps: ScenarioStep[] = [];
  for (let i = 0; i < length; i++) {
    steps.push({ do: "command", text: request(random, random.pick(weighted), options) });
  }
  if (random.chance(0.15)) steps.push({ do: "command", text: request(random, "quit", options) });
  return steps;
}

/**
 * `-machine pc` options with a device of each kind the simulator answers for (balloon, an empty
 * CD-ROM drive, a virtio NIC), as the sessions compared with real QEMU use them.
 */
export const PC_DEVICE_OPTIONS: readonly string[] = [
  "-m",
  "64",
  "-device",
  "virtio-balloon-pci,id=balloon0",
  "-drive",
  "if=none,id=cd0,media=cdrom",
  "-device",
  "ide-cd,drive=cd0,id=cdrom0",
  "-netdev",
  "user,id=n0",
  "-device",
  "virtio-net-pci,netdev=n0,id=net0",
];

/** The command line of a session's machine (after `-machine`, `-accel`, …; see scenario.ts). */
export function fuzzMachineOptions(machine: FuzzMachine): string[] {
  if (machine === "none") return ["-m", "16"];
  return [
    ...PC_DEVICE_OPTIONS,
    "-drive",
    "driver=null-co,if=none,id=d0,size=16M",
    "-device",
    "virtio-blk-pci,drive=d0,id=disk0",
  ];
}
