/**
 * The options that make `qmpkit sim` a drop-in for `qemu-system-x86_64` in test harnesses and
 * VM managers, added to the simulator's QEMU-style parser (`src/sim/qemu-options.ts`,
 * `extraOptions`):
 *
 * | option | effect |
 * |---|---|
 * | `-chardev socket,id=ID,path=PATH,server=on,wait=off` | a unix socket QMP can listen on |
 * | `-chardev socket,id=ID,host=H,port=P,server=on,wait=off` | the same over TCP |
 * | `-chardev socket,id=ID,path=PATH` (no `server=on`) | QEMU connects out to a socket the harness listens on |
 * | `-chardev socket,id=ID,fd=N[,server=on]` | an inherited socket: listening with `server=on`, else already connected (as QEMU's Python `QEMUMachine` passes one end of a socketpair) |
 * | `-mon chardev=ID,mode=control[,pretty=on]` | a QMP monitor on that chardev |
 * | `-pidfile FILE` | the process id is written there once the monitors listen, removed at exit |
 * | `-daemonize` | the simulator detaches; the command returns once the monitors listen |
 * | `-display none`, `-vga none`, `-nodefaults`, `-nographic` | accepted (nothing to show) |
 *
 * A `-chardev` that no `-mon` uses (a serial console, say) is accepted and not opened.
 *
 * Accepted and ignored, because they change nothing a QMP client can see of the simulator
 * ({@link IGNORED_OPTIONS}): `-no-user-config`, `-k`, `-rtc`, `-boot`, `-serial`,
 * `-parallel`, `-monitor none`, `-vnc none`, `-msg`, `-D`, `-d`, `-L`, `-bios`, `-sandbox`,
 * `-overcommit`, `-chroot`, `-runas`, `-trace`, `-global`, `-no-hpet`. (`-smp`, `-cpu`, `-uuid`,
 * `-object`, `-blockdev`, `-audiodev` are the simulator's own: `src/sim/qemu-options.ts`.)
 * Anything else is refused, as QEMU refuses an option it does not know: the message names it and
 * the exit status is 1. `-mon` in `readline` mode (the human monitor, QEMU's default for `-mon`)
 * is refused too: the simulator speaks only QMP.
 *
 * @module
 */
import { fstatSync } from "node:fs";
import { parseAddFd, parseOtherChardev, UnlocatedOptionError } from "../sim/domain-config.js";
import {
  checkDeviceChardevs,
  type QemuOptionSpec,
  QemuOptionError,
  type SimCommandLine,
  splitQemuOpts,
} from "../sim/qemu-options.js";

/** A chardev as `-chardev` declared it. */
export type ChardevSpec =
  | { readonly id: string; readonly kind: "listen"; readonly target: string }
  | { readonly id: string; readonly kind: "connect"; readonly target: string }
  | { readonly id: string; readonly kind: "fd"; readonly fd: number; readonly server: boolean };

/** What the drop-in options add to a command line, resolved. */
export interface DropInSettings {
  /** Monitors on inherited descriptors (listening or connected sockets). */
  readonly fdMonitors: ReadonlyArray<{
    /** The `-chardev` id. */
    readonly id: string;
    readonly fd: number;
    readonly server: boolean;
    readonly pretty: boolean;
  }>;
  /** Monitors on sockets the simulator connects out to (`-chardev socket,path=P` without server=on). */
  readonly connectMonitors: ReadonlyArray<{
    readonly id: string;
    readonly target: string;
    readonly pretty: boolean;
  }>;
  readonly pidfile?: string | undefined;
  readonly daemonize: boolean;
}

function onOff(option: string, key: string, value: string | undefined): boolean {
  if (value === undefined || value === "on" || value === "yes" || value === "true") return true;
  if (value === "off" || value === "no" || value === "false") return false;
  throw new QemuOptionError(option, `Parameter '${key}' expects 'on' or 'off'`);
}

/** Parses a `-chardev` value. Only the socket backend is simulated. */
export function parseChardev(option: string, text: string): ChardevSpec {
  const [first, ...rest] = splitQemuOpts(text);
  const backend = first?.[1] === undefined ? (first?.[0] ?? "") : "";
  const opts = new Map<string, string | undefined>(first?.[1] === undefined ? [] : [first!]);
  for (const [k, v] of rest) opts.set(k, v);
  const backendName = backend || opts.get("backend") || "";
  if (backendName !== "socket") {
    throw new QemuOptionError(
      option,
      `chardev backend '${backendName}' is not simulated: use socket,id=ID,path=PATH,server=on,wait=off or socket,id=ID,fd=N`,
    );
  }
  const id = opts.get("id");
  if (!id) throw new QemuOptionError(option, "Parameter 'id' is missing");
  const server = opts.has("server") ? onOff(option, "server", opts.get("server")) : false;
  const wait = opts.has("nowait")
    ? false
    : opts.has("wait")
      ? onOff(option, "wait", opts.get("wait"))
      : true;
  for (const key of opts.keys()) {
    if (
      ![
        "id",
        "path",
        "host",
        "port",
        "fd",
        "server",
        "wait",
        "nowait",
        "backend",
        "ipv4",
        "ipv6",
        "nodelay",
        "telnet",
        "websocket",
        "reconnect",
        "abstract",
        "tight",
        "logfile",
        "logappend",
        "mux",
        "to",
      ].includes(key)
    ) {
      throw new QemuOptionError(option, `Invalid parameter '${key}'`);
    }
  }
  const fd = opts.get("fd");
  if (fd !== undefined) {
    const n = Number(fd);
    if (!/^\d+$/.test(fd) || n < 3)
      throw new QemuOptionError(option, `invalid file descriptor '${fd}'`);
    return { id, kind: "fd", fd: n, server };
  }
  if (server && wait) {
    throw new QemuOptionError(
      option,
      "the simulator does not wait for a client before starting: add wait=off",
    );
  }
  // Without server=on QEMU connects out to a socket the harness listens on.
  const kind = server ? "listen" : "connect";
  const path = opts.get("path");
  if (path !== undefined) {
    if (path === "") throw new QemuOptionError(option, "the socket path is empty");
    return { id, kind, target: `unix:${path}` };
  }
  const port = opts.get("port");
  if (port !== undefined) {
    if (!/^\d+$/.test(port)) throw new QemuOptionError(option, `invalid port '${port}'`);
    const host = opts.get("host") || (server ? "0.0.0.0" : "localhost");
    return { id, kind, target: `tcp:${host.includes(":") ? `[${host}]` : host}:${port}` };
  }
  throw new QemuOptionError(
    option,
    "chardev: socket: no local address given (path=, host=/port= or fd=)",
  );
}

const EXTRA_FD_MONITORS = "drop-in-fd-monitors";

interface PendingState {
  chardevs: Map<string, ChardevSpec>;
  /** How many `-qmp` monitors came before each `-chardev` (see {@link attachMonitors}). */
  qmpBefore: Map<string, number>;
  /** `-mon` options waiting for their `-chardev` (QEMU does not care about their order). */
  mons: Array<{ chardev: string; pretty: boolean; where: string }>;
}

const pending = new WeakMap<SimCommandLine, PendingState>();

function stateOf(line: SimCommandLine): PendingState {
  let state = pending.get(line);
  if (!state) {
    state = { chardevs: new Map(), qmpBefore: new Map(), mons: [] };
    pending.set(line, state);
  }
  return state;
}

/**
 * Attaches every `-mon` whose chardev is known: listening ones become ordinary monitors, kept in
 * the order their chardevs were declared among the `-qmp` ones. QEMU creates chardevs in
 * command-line order (a `-qmp` makes one, `compat_monitorN`), and `query-yank` lists them in
 * that order (seen on 7.2.22).
 */
function attachMonitors(line: SimCommandLine): void {
  const state = stateOf(line);
  const before = state.mons.length;
  state.mons = state.mons.filter((mon) => {
    const chardev = state.chardevs.get(mon.chardev);
    if (!chardev) return true;
    if (chardev.kind === "listen") {
      line.monitors.push(
        mon.pretty
          ? { target: chardev.target, pretty: true, chardev: chardev.id }
          : { target: chardev.target, chardev: chardev.id },
      );
    } else {
      if (!line.extra[EXTRA_FD_MONITORS]) line.extra[EXTRA_FD_MONITORS] = [];
      line.extra[EXTRA_FD_MONITORS]!.push(JSON.stringify({ ...chardev, pretty: mon.pretty }));
    }
    return false;
  });
  if (state.mons.length === before) return;
  const declared = [...state.chardevs.keys()];
  let qmpSeen = 0;
  const keyed = line.monitors.map((m) =>
    m.chardev === undefined
      ? { m, key: [qmpSeen++, 1, 0] }
      : { m, key: [state.qmpBefore.get(m.chardev) ?? 0, 0, declared.indexOf(m.chardev)] },
  );
  keyed.sort((a, b) => a.key[0]! - b.key[0]! || a.key[1]! - b.key[1]! || a.key[2]! - b.key[2]!);
  line.monitors.splice(0, line.monitors.length, ...keyed.map((k) => k.m));
}

function ignored(help: string): QemuOptionSpec {
  return { takesValue: true, help, apply: () => {} };
}

/**
 * An option accepted and ignored whose on/off keys are still checked with QEMU's text:
 * `located` messages name the option and its value (`-msg timestamp=x: …`), the others do not
 * (QEMU checks `-boot` after parsing the line: `Parameter 'boot.strict' expects 'on' or 'off'`).
 */
function onOffKeys(
  help: string,
  keys: readonly string[],
  bools: readonly string[],
  text: (key: string) => string,
  located: boolean,
): QemuOptionSpec {
  return {
    takesValue: true,
    help,
    apply: (_line, value, option) => {
      for (const [k, v] of splitQemuOpts(value)) {
        if (!keys.includes(k))
          throw new QemuOptionError(`${option} ${value}`, `Invalid parameter '${k}'`);
        if (bools.includes(k) && !["on", "off", "yes", "no", "true", "false"].includes(v ?? "")) {
          throw located
            ? new QemuOptionError(`${option} ${value}`, text(k))
            : new UnlocatedOptionError(text(k));
        }
      }
    },
  };
}

/** An option the simulator accepts only as `none`; any other value fails with `why`. */
function onlyNone(help: string, why: string): QemuOptionSpec {
  return {
    takesValue: true,
    help,
    apply: (_line, value, option) => {
      if (value !== "none") throw new QemuOptionError(option, why);
    },
  };
}

const NO_DISPLAY = "the simulator has no display: only 'none' is accepted";

/**
 * Options accepted and ignored: they change nothing a QMP client sees of the simulator
 * (`-monitor` and `-vnc` only as `none`).
 */
export const IGNORED_OPTIONS: Readonly<Record<string, QemuOptionSpec>> = {
  "no-user-config": {
    takesValue: false,
    help: "-no-user-config  accepted, ignored",
    apply: () => {},
  },
  "no-hpet": { takesValue: false, help: "-no-hpet  accepted, ignored", apply: () => {} },
  k: ignored("-k LAYOUT  accepted, ignored"),
  rtc: ignored("-rtc …  accepted, ignored"),
  boot: onOffKeys(
    "-boot …  accepted, ignored",
    ["strict", "menu", "splash-time", "reboot-timeout", "order", "once", "splash"],
    ["strict", "menu"],
    (key) => `Parameter 'boot.${key}' expects 'on' or 'off'`,
    false,
  ),
  serial: ignored("-serial …  accepted, ignored (no guest console)"),
  parallel: ignored("-parallel …  accepted, ignored"),
  msg: onOffKeys(
    "-msg timestamp=on|off[,guest-name=on|off]  accepted, ignored",
    ["timestamp", "guest-name"],
    ["timestamp", "guest-name"],
    (key) => `Parameter '${key}' expects 'on' or 'off'`,
    true,
  ),
  D: ignored("-D LOGFILE  accepted, ignored"),
  d: ignored("-d ITEMS  accepted, ignored"),
  L: ignored("-L DIR  accepted, ignored"),
  bios: ignored("-bios FILE  accepted, ignored"),
  sandbox: ignored("-sandbox …  accepted, ignored"),
  overcommit: ignored("-overcommit …  accepted, ignored"),
  chroot: ignored("-chroot DIR  accepted, ignored"),
  runas: ignored("-runas USER  accepted, ignored"),
  trace: ignored("-trace …  accepted, ignored"),
  global: ignored("-global …  accepted, ignored"),
  monitor: onlyNone(
    "-monitor none  accepted (the human monitor is not simulated)",
    "the human monitor (HMP) is not simulated: use -monitor none and -qmp or -mon mode=control",
  ),
  vnc: onlyNone("-vnc none  accepted", NO_DISPLAY),
};

/** A QMP monitor on a chardev that is not a socket: the simulator serves none there. */
function refuseMonitorOn(line: SimCommandLine, id: string, now = false): void {
  if (now || stateOf(line).mons.some((m) => m.chardev === id)) {
    const backend = line.domain.chardevs.find((c) => c.id === id)?.backend ?? "?";
    throw new QemuOptionError(
      "-mon",
      `chardev "${id}" (${backend}): the simulator serves monitors on socket chardevs only`,
    );
  }
}

/** The drop-in options, to pass as `extraOptions` to the simulator's parser. */
export const DROP_IN_OPTIONS: Readonly<Record<string, QemuOptionSpec>> = {
  ...IGNORED_OPTIONS,
  chardev: {
    takesValue: true,
    help: "-chardev socket,id=ID,path=PATH,server=on,wait=off | socket,id=ID,host=H,port=P,server=on,wait=off | socket,id=ID,fd=N[,server=on]",
    apply: (line, value, option) => {
      const where = `${option} ${value}`;
      const first = splitQemuOpts(value)[0];
      const backend = first?.[1] === undefined ? first?.[0] : undefined;
      if (backend !== "socket" && !/(^|,)backend=socket(,|$)/.test(value)) {
        // pty, file, null, …: kept for query-chardev and the devices that use them.
        const config = parseOtherChardev(where, value, line.domain.fdsets);
        refuseMonitorOn(line, config.id);
        if (line.domain.chardevs.some((c) => c.id === config.id))
          throw new QemuOptionError(
            where,
            `attempt to add duplicate property '${config.id}' to object (type 'container')`,
          );
        line.domain.chardevs.push(config);
        return;
      }
      const spec = parseChardev(option, value);
      const opts = new Map(splitQemuOpts(value));
      line.domain.chardevs.push({
        id: spec.id,
        backend: "socket",
        path: opts.get("path"),
        server: spec.kind === "fd" ? spec.server : spec.kind === "listen",
        fd: spec.kind === "fd" ? spec.fd : undefined,
        where,
      });
      const state = stateOf(line);
      if (state.chardevs.has(spec.id))
        throw new QemuOptionError(option, `Duplicate ID '${spec.id}' for chardev`);
      state.chardevs.set(spec.id, spec);
      state.qmpBefore.set(spec.id, line.monitors.filter((m) => m.chardev === undefined).length);
      attachMonitors(line);
    },
  },
  mon: {
    takesValue: true,
    help: "-mon chardev=ID,mode=control[,pretty=on]  a QMP monitor on a -chardev",
    apply: (line, value, option) => {
      const opts = new Map(splitQemuOpts(value));
      if (!opts.get("chardev")) throw new QemuOptionError(option, "Parameter 'chardev' is missing");
      const mode = opts.get("mode") ?? "readline";
      if (mode !== "control") {
        throw new QemuOptionError(
          option,
          `mode=${mode}: the human monitor is not simulated, use mode=control`,
        );
      }
      for (const key of opts.keys()) {
        if (!["chardev", "mode", "pretty", "id"].includes(key))
          throw new QemuOptionError(option, `Invalid parameter '${key}'`);
      }
      const pretty = opts.has("pretty") ? onOff(option, "pretty", opts.get("pretty")) : false;
      const other = line.domain.chardevs.find((c) => c.id === opts.get("chardev"));
      if (other !== undefined && other.backend !== "socket") refuseMonitorOn(line, other.id, true);
      stateOf(line).mons.push({
        chardev: opts.get("chardev")!,
        pretty,
        where: `${option} ${value}`,
      });
      attachMonitors(line);
    },
  },
  vga: onlyNone("-vga none  accepted", NO_DISPLAY),
  "add-fd": {
    takesValue: true,
    help: "-add-fd fd=M,set=N[,opaque=S]  an inherited descriptor for /dev/fdset/N",
    apply: (line, value, option) => {
      const { set, fd } = parseAddFd(`${option} ${value}`, value, (n) => {
        try {
          fstatSync(n);
          return true;
        } catch {
          return false;
        }
      });
      const fds = line.domain.fdsets.get(set) ?? [];
      fds.push(fd);
      line.domain.fdsets.set(set, fds);
    },
  },
  pidfile: {
    takesValue: true,
    help: "-pidfile FILE  write the process id there once listening",
    apply: (line, value) => {
      line.extra.pidfile = [value];
    },
  },
  daemonize: {
    takesValue: false,
    help: "-daemonize  detach once the monitors listen",
    apply: (line) => {
      line.extra.daemonize = ["on"];
    },
  },
};

/**
 * The drop-in settings of a parsed command line: monitors on inherited descriptors or on
 * sockets to connect out to (those on listening sockets are already in `line.monitors`), the pid
 * file and `-daemonize`. Throws `QemuOptionError` for a `-mon` whose chardev was never declared.
 */
export function resolveDropIn(line: SimCommandLine): DropInSettings {
  checkDeviceChardevs(line);
  const state = stateOf(line);
  const missing = state.mons[0];
  if (missing) {
    if (line.domain.chardevs.some((c) => c.id === missing.chardev)) {
      throw new QemuOptionError(
        "-mon",
        `chardev "${missing.chardev}": the simulator serves monitors on socket chardevs only`,
      );
    }
    throw new QemuOptionError(missing.where, `chardev "${missing.chardev}" not found`);
  }
  const fdMonitors: Array<{ id: string; fd: number; server: boolean; pretty: boolean }> = [];
  const connectMonitors: Array<{ id: string; target: string; pretty: boolean }> = [];
  for (const text of line.extra[EXTRA_FD_MONITORS] ?? []) {
    const spec = JSON.parse(text) as ChardevSpec & { pretty: boolean };
    if (spec.kind === "fd")
      fdMonitors.push({ id: spec.id, fd: spec.fd, server: spec.server, pretty: spec.pretty });
    else if (spec.kind === "connect")
      connectMonitors.push({ id: spec.id, target: spec.target, pretty: spec.pretty });
  }
  return {
    fdMonitors,
    connectMonitors,
    pidfile: line.extra.pidfile?.[0],
    daemonize: line.extra.daemonize !== undefined,
  };
}

/** Whether a command line has a monitor that is not in `line.monitors` (fd or connect-out). */
export function hasDropInMonitors(line: SimCommandLine): boolean {
  return (line.extra[EXTRA_FD_MONITORS]?.length ?? 0) > 0;
}
