/**
 * A command-line parser with QEMU's option spelling, for what the simulator simulates
 * (`qemu-options.hx`; `-opt` and `--opt` are the same option, as in QEMU).
 *
 * Supported: `-qmp unix:PATH,server=on,wait=off` and `-qmp tcp:HOST:PORT,server=on,wait=off`
 * (several), `-S`, `-no-shutdown`, `-no-reboot`, `-action k=v[,k=v…]`, `-watchdog-action A`,
 * `-name NAME|guest=NAME[,…]`, `-machine|-M none|pc|q35|pc-…[,accel=…]`, `-incoming defer|URI`,
 * `-accel A`, `-display none`, `-nodefaults`, `-m SIZE`, a few `-drive`/`-device` forms (see
 * {@link parseQemuOptions}), and the simulator's own `--qemu-version V`, `--strict`,
 * `--guest-script FILE`, `--package TEXT`. Unknown options are refused.
 *
 * The table is open: {@link QEMU_OPTION_TABLE} can be extended by passing `extraOptions`
 * (the CLI adds `-chardev`, `-mon`, `-pidfile`, `-daemonize`).
 *
 * @module
 */
import { checkActions, type RunStateActions } from "./actions.js";
import type {
  BlockDeviceOptions,
  BlockErrorAction,
  NicOptions,
  QdevDeviceOptions,
} from "./devices.js";
import { existsSync } from "node:fs";
import {
  asProps,
  checkSmp,
  type DomainConfig,
  emptyDomainConfig,
  parseBlockdev,
  parseBool,
  parseJsonOrKeyval,
  parseSizeValue,
  parseSmp,
  parseUuid,
  requireString,
  UnlocatedOptionError,
} from "./domain-config.js";
import { QemuOptionError, splitQemuOpts } from "./qemu-options-core.js";
import { recordedProfile } from "./recorded-profile.js";
import { qemuProfile } from "./versions.js";

export { QemuOptionError, splitQemuOpts };

/** One QMP monitor to listen on. */
export interface MonitorSpec {
  /** `unix:PATH` or `tcp:HOST:PORT`. */
  target: string;
  /** `pretty=on` (`-mon`). */
  pretty?: boolean | undefined;
  /**
   * The `-chardev` id when the monitor sits on a named chardev (`-chardev …,id=ID` with
   * `-mon chardev=ID`): `query-yank` lists it under that name; a `-qmp` monitor has none and is
   * listed as `compat_monitorN`.
   */
  chardev?: string | undefined;
}

/** What a command line asks for. */
export interface SimCommandLine {
  monitors: MonitorSpec[];
  startPaused: boolean;
  actions: Partial<RunStateActions>;
  /** Whether `-action` was used (QEMU 6.0+ only). */
  actionOption?: boolean | undefined;
  name?: string | undefined;
  machine: "none" | "pc";
  incoming?: string | undefined;
  accel?: string | undefined;
  nodefaults: boolean;
  memoryBytes?: number | undefined;
  qemuVersion?: string | undefined;
  packageString?: string | undefined;
  strict: boolean;
  guestScript?: string | undefined;
  /**
   * `--guest-acpi-shutdown MS`: the simulated guest honours the ACPI power button and shuts
   * down MS ms (of its run time) after `system_powerdown`, as an OS does. Absent: it ignores
   * the button, as a guest without an OS (or a hung one) does.
   */
  acpiShutdownMs?: number | undefined;
  firmwareResets?: number | undefined;
  blockDevices: BlockDeviceOptions[];
  /** NICs with their driver (only a virtio one has a `virtio-backend` child). */
  nics: NicOptions[];
  /** `-netdev` ids: net clients that are not NICs. */
  netdevs: string[];
  devices: QdevDeviceOptions[];
  balloon: boolean;
  serialPorts: string[];
  /** What the domain's options configure (`domain-config.ts`). */
  domain: DomainConfig;
  /**
   * `--advertise recorded`: `query-qmp-schema` and `query-commands` answer the real binary's
   * recorded replies, as a capability probe (libvirt's) must see them.
   */
  advertise?: "implemented" | "recorded" | undefined;
  /** Options an extension handled, by name, for its own use. */
  extra: Record<string, string[]>;
  /** `-drive` definitions waiting for their `-device`. */
  drives: Map<
    string,
    {
      id: string;
      removable: boolean;
      werror?: BlockErrorAction | undefined;
      rerror?: BlockErrorAction | undefined;
      /** `node-name`: the name of the drive's top node (BLOCK_IO_ERROR's `node-name`). */
      nodeName?: string | undefined;
    }
  >;
}

/** How one option is parsed: `takesValue` options read the next argument. */
export interface QemuOptionSpec {
  readonly takesValue: boolean;
  /** Applies the option; throw {@link QemuOptionError} for a bad value. */
  apply(line: SimCommandLine, value: string, option: string): void;
  /** One line of help. */
  readonly help: string;
}

function onOff(option: string, key: string, value: string | undefined): boolean {
  if (value === undefined || value === "on" || value === "yes" || value === "true") return true;
  if (value === "off" || value === "no" || value === "false") return false;
  throw new QemuOptionError(option, `parameter '${key}' expects 'on' or 'off', not '${value}'`);
}

/** Parses the `-qmp` chardev spelling into a listen target. */
export function parseMonitorSpec(option: string, text: string): MonitorSpec {
  const [first, ...rest] = splitQemuOpts(text);
  const head = first?.[1] === undefined ? (first?.[0] ?? "") : `${first[0]}=${first[1]}`;
  let target: string;
  if (head.startsWith("unix:")) {
    if (head.length === 5) throw new QemuOptionError(option, `missing socket path in '${text}'`);
    target = head;
  } else if (head.startsWith("tcp:")) {
    const hostPort = head.slice(4);
    const colon = hostPort.lastIndexOf(":");
    const port = hostPort.slice(colon + 1);
    if (colon < 0 || !/^\d+$/.test(port)) {
      throw new QemuOptionError(option, `'${text}' needs tcp:HOST:PORT`);
    }
    target = `tcp:${hostPort.slice(0, colon) || "0.0.0.0"}:${port}`;
  } else {
    throw new QemuOptionError(
      option,
      `unsupported monitor backend '${head}': the simulator listens on unix:PATH or tcp:HOST:PORT`,
    );
  }
  let server = false;
  let wait = true;
  let pretty: boolean | undefined;
  for (const [key, value] of rest) {
    switch (key) {
      case "server":
        server = onOff(option, key, value);
        break;
      case "nowait":
        wait = false;
        break;
      case "wait":
        wait = onOff(option, key, value);
        break;
      case "pretty":
        pretty = onOff(option, key, value);
        break;
      case "nodelay":
      case "ipv4":
      case "ipv6":
      case "reconnect":
        break;
      default:
        throw new QemuOptionError(option, `invalid parameter '${key}' in '${text}'`);
    }
  }
  if (!server || wait) {
    throw new QemuOptionError(
      option,
      `the simulator only listens: use '${head},server=on,wait=off'`,
    );
  }
  return pretty === undefined ? { target } : { target, pretty };
}

function parseSize(option: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(text.replace(/^size=/, ""));
  if (m === null) throw new QemuOptionError(option, `invalid size '${text}'`);
  const unit = (m[2] ?? "").toUpperCase();
  // A bare number means MiB for -m.
  const scale = { "": 1 << 20, K: 1 << 10, M: 1 << 20, G: 1 << 30, T: 2 ** 40 }[unit] ?? 1 << 20;
  return Math.round(Number(m[1]) * scale);
}

const errorActions = new Set(["report", "ignore", "stop", "enospc"]);

/** The built-in options. */
export const QEMU_OPTION_TABLE: Readonly<Record<string, QemuOptionSpec>> = {
  qmp: {
    takesValue: true,
    help: "-qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,wait=off  (repeatable)",
    apply: (line, value, option) => {
      line.monitors.push(parseMonitorSpec(option, value));
    },
  },
  "qmp-pretty": {
    takesValue: true,
    help: "-qmp-pretty like -qmp, with pretty-printed output",
    apply: (line, value, option) => {
      line.monitors.push({ ...parseMonitorSpec(option, value), pretty: true });
    },
  },
  S: {
    takesValue: false,
    help: "-S  start paused (prelaunch) until 'cont'",
    apply: (line) => {
      line.startPaused = true;
    },
  },
  "no-shutdown": {
    takesValue: false,
    help: "-no-shutdown  same as -action shutdown=pause",
    apply: (line) => {
      line.actions.shutdown = "pause";
    },
  },
  "no-reboot": {
    takesValue: false,
    help: "-no-reboot  same as -action reboot=shutdown",
    apply: (line) => {
      line.actions.reboot = "shutdown";
    },
  },
  action: {
    takesValue: true,
    help: "-action reboot=reset|shutdown,shutdown=poweroff|pause,panic=pause|shutdown|exit-failure|none,watchdog=…",
    apply: (line, value, option) => {
      const input: Record<string, string> = {};
      for (const [k, v] of splitQemuOpts(value)) {
        if (v === undefined) throw new QemuOptionError(option, `'${k}' needs a value (${k}=…)`);
        input[k] = v;
      }
      try {
        Object.assign(line.actions, checkActions(input));
      } catch (e) {
        throw new QemuOptionError(option, (e as Error).message, { cause: e });
      }
      line.actionOption = true;
    },
  },
  "watchdog-action": {
    takesValue: true,
    help: "-watchdog-action reset|shutdown|poweroff|pause|debug|none|inject-nmi",
    apply: (line, value, option) => {
      try {
        Object.assign(line.actions, checkActions({ watchdog: value }));
      } catch (e) {
        throw new QemuOptionError(option, (e as Error).message, { cause: e });
      }
    },
  },
  name: {
    takesValue: true,
    help: "-name NAME | guest=NAME[,debug-threads=on]",
    apply: (line, value, option) => {
      const parts = splitQemuOpts(value);
      const first = parts[0];
      if (first !== undefined && first[1] === undefined) line.name = first[0];
      for (const [k, v] of parts) {
        if (k === "guest" && v !== undefined) line.name = v;
        else if (k === "debug-threads") parseBool(`${option} ${value}`, k, v);
        else if (k !== "process" && k !== "guest" && !(k === first?.[0] && v === undefined))
          throw new QemuOptionError(`${option} ${value}`, `Invalid parameter '${k}'`);
      }
    },
  },
  machine: {
    takesValue: true,
    help: "-machine none|pc|q35|pc-i440fx-X|pc-q35-X[,accel=…]  (pc-like machines have ACPI)",
    apply: (line, value, option) => {
      for (const [k, v] of splitQemuOpts(value)) {
        const type = v === undefined ? k : k === "type" ? v : undefined;
        if (type !== undefined) {
          if (type === "none") line.machine = "none";
          else if (/^(pc|q35|pc-i440fx-[\d.]+|pc-q35-[\d.]+)$/.test(type)) line.machine = "pc";
          else
            throw new QemuOptionError(option, `unsupported machine type '${type}' (none, pc, q35)`);
          line.domain.machineType = type;
        } else if (k === "accel") {
          line.accel = v;
        } else if (k === "memory-backend") {
          line.domain.memoryBackend = v;
        } else if (!MACHINE_PROPERTIES.has(k)) {
          // QEMU sets each as a property of the machine object after parsing the line.
          const machineType = line.domain.machineType ?? "none";
          throw new UnlocatedOptionError(
            `Property '${machineType === "none" ? "none" : machineType}-machine.${k}' not found`,
          );
        }
      }
    },
  },
  incoming: {
    takesValue: true,
    help: "-incoming defer|URI  start in 'inmigrate'",
    apply: (line, value) => {
      line.incoming = value;
    },
  },
  accel: {
    takesValue: true,
    help: "-accel tcg|kvm  accepted; the simulator has no accelerator",
    apply: (line, value) => {
      line.accel = value;
    },
  },
  "enable-kvm": {
    takesValue: false,
    help: "-enable-kvm  accepted",
    apply: (line) => {
      line.accel = "kvm";
    },
  },
  display: {
    takesValue: true,
    help: "-display none",
    apply: (_line, value, option) => {
      if (splitQemuOpts(value)[0]?.[0] !== "none") {
        throw new QemuOptionError(
          option,
          `the simulator has no display: only 'none' is accepted, not '${value}'`,
        );
      }
    },
  },
  nographic: {
    takesValue: false,
    help: "-nographic  accepted",
    apply: () => {},
  },
  nodefaults: {
    takesValue: false,
    help: "-nodefaults  accepted (the simulator never adds default devices)",
    apply: (line) => {
      line.nodefaults = true;
    },
  },
  m: {
    takesValue: true,
    help: "-m SIZE  RAM size (balloon, dump)",
    apply: (line, value, option) => {
      line.memoryBytes = parseSize(option, value);
    },
  },
  drive: {
    takesValue: true,
    help: "-drive if=none,id=ID[,media=cdrom][,werror=…][,rerror=…]  a backend for -device",
    apply: (line, value, option) => {
      const drive: {
        id: string;
        removable: boolean;
        werror?: BlockErrorAction;
        rerror?: BlockErrorAction;
        nodeName?: string;
      } = {
        id: "",
        removable: false,
      };
      let id: string | undefined;
      for (const [k, v] of splitQemuOpts(value)) {
        if (k === "id") id = v;
        else if (k === "media") drive.removable = v === "cdrom";
        // The top node's name, as QEMU's block layer gives it ([obs] 7.2.22 and 10.0.2:
        // BLOCK_IO_ERROR's node-name is the -drive node-name).
        else if (k === "node-name" && v !== undefined) drive.nodeName = v;
        else if (k === "werror" || k === "rerror") {
          if (v === undefined || !errorActions.has(v)) {
            throw new QemuOptionError(option, `'${k}' must be one of report, ignore, stop, enospc`);
          }
          drive[k] = v as BlockErrorAction;
        } else if (
          ![
            "if",
            "file",
            "format",
            "driver",
            "size",
            "readonly",
            "cache",
            "aio",
            "node-name",
            "discard",
          ].includes(k)
        ) {
          throw new QemuOptionError(option, `invalid drive parameter '${k}'`);
        }
      }
      if (id === undefined) throw new QemuOptionError(option, "the simulator needs id=… on -drive");
      drive.id = id;
      line.drives.set(id, drive);
    },
  },
  device: {
    takesValue: true,
    help: "-device virtio-net-pci|virtio-balloon-pci|virtserialport|ide-cd|scsi-cd|virtio-blk-pci|ide-hd|<other>,id=ID[,drive=D][,name=N]",
    apply: (line, value, option) => {
      const where = `${option} ${value}`;
      const props = parseJsonOrKeyval(where, value, "driver");
      const driver = requireString(where, props, "driver");
      const opts = new Map(
        Object.entries(props)
          .filter(([k]) => k !== "driver")
          .map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)] as const),
      );
      const id = opts.get("id");
      if (id !== undefined) {
        if (line.domain.peripherals.some((p) => p.id === id)) {
          throw new QemuOptionError(where, `Duplicate device ID '${id}'`);
        }
        line.domain.peripherals.push({ id, driver, props, where });
      } else {
        line.domain.anonymousDevices.push({ driver, where });
      }
      const driveRef = opts.get("drive");
      if (driveRef !== undefined && !line.drives.has(driveRef)) {
        // A -blockdev node (libvirt's way): checked and answered from the domain's block nodes.
        placeOnBus(line, driver, opts);
        if (id !== undefined) {
          const hotpluggable = !driver.startsWith("ide-") && driver !== "floppy";
          line.devices.push({ id, driver, hotpluggable, bus: hotpluggable ? "pci.0" : "ide.1" });
        }
        return;
      }
      const blocker = placeOnBus(line, driver, opts);
      if (driver.startsWith("virtio-balloon")) {
        line.balloon = true;
        if (id !== undefined) line.devices.push({ id, driver });
      } else if (driver.startsWith("virtio-net") || driver === "e1000" || driver === "rtl8139") {
        if (id === undefined)
          throw new QemuOptionError(option, `${driver} needs id=… in the simulator`);
        line.nics.push({ id, driver });
      } else if (driver === "virtserialport" || driver === "virtconsole") {
        // VSERPORT_CHANGE names the port by its qdev id (hw/char/virtio-console.c), so only a
        // port with an id can report; the guest-visible `name` plays no part in QMP.
        if (id !== undefined) {
          line.serialPorts.push(id);
          line.devices.push({ id, driver });
        }
      } else if (
        [
          "ide-cd",
          "scsi-cd",
          "ide-hd",
          "scsi-hd",
          "virtio-blk-pci",
          "virtio-blk",
          "floppy",
        ].includes(driver)
      ) {
        const driveId = opts.get("drive");
        const drive = driveId === undefined ? undefined : line.drives.get(driveId);
        if (drive === undefined) {
          throw new QemuOptionError(option, `${driver} needs drive=ID of an earlier -drive`);
        }
        const qdevId = id ?? `${drive.id}-dev`;
        const block: BlockDeviceOptions = {
          id: drive.id,
          qdevId,
          removable: drive.removable || driver.endsWith("-cd") || driver === "floppy",
        };
        if (drive.werror !== undefined) block.werror = drive.werror;
        if (drive.rerror !== undefined) block.rerror = drive.rerror;
        if (drive.nodeName !== undefined) block.nodeName = drive.nodeName;
        line.blockDevices.push(block);
        // IDE and floppy buses cannot hot-unplug (7.2.22: "Bus 'ide.1' does not support hotplugging").
        const hotpluggable = !driver.startsWith("ide-") && driver !== "floppy";
        line.devices.push({
          id: qdevId,
          driver,
          hotpluggable,
          bus: hotpluggable ? "pci.0" : "ide.1",
        });
      } else if (id !== undefined) {
        const device: QdevDeviceOptions = { id, driver };
        if (blocker !== undefined) blocker.device = device;
        line.devices.push(device);
      }
      // Anything else without an id (controllers, watchdogs, pvpanic) has nothing to simulate;
      // a non-migratable device without an id blocks migration in QEMU but not here.
    },
  },
  netdev: {
    takesValue: true,
    help: "-netdev TYPE,id=ID  a host network backend (a net client that is not a NIC)",
    apply: (line, value, option) => {
      const where = `${option} ${value}`;
      const o = parseJsonOrKeyval(where, value, "type");
      const type = requireString(where, o, "type");
      const id = requireString(where, o, "id");
      line.domain.netdevs.push({ id, type, where });
      line.netdevs.push(id);
    },
  },
  object: {
    takesValue: true,
    help: "-object TYPE,id=ID[,…] | {JSON}  secret, memory-backend-*, iothread, … (checked, kept)",
    apply: (line, value, option) => {
      const where = `${option} ${value}`;
      const o = parseJsonOrKeyval(where, value, "qom-type");
      const qomType = requireString(where, o, "qom-type");
      const id = requireString(where, o, "id");
      if (qomType.startsWith("memory-backend-")) {
        if (o.size === undefined) throw new QemuOptionError(where, "Parameter 'size' is missing");
        parseSizeValue(where, "size", o.size);
      }
      if (line.domain.objects.some((x) => x.id === id)) {
        throw new UnlocatedOptionError(
          `attempt to add duplicate property '${id}' to object (type 'container')`,
        );
      }
      line.domain.objects.push({ qomType, id, props: asProps(o), where });
    },
  },
  blockdev: {
    takesValue: true,
    help: "-blockdev {JSON} | driver=…,node-name=…  a block node (file, raw, qcow2 over a file)",
    apply: (line, value, option) => {
      line.domain.blockNodes.push(
        parseBlockdev(`${option} ${value}`, value, line.domain.blockNodes, existsSync),
      );
    },
  },
  audiodev: {
    takesValue: true,
    help: "-audiodev {JSON} | DRIVER,id=ID  accepted (the simulator plays no sound)",
    apply: (line, value, option) => {
      const where = `${option} ${value}`;
      const o = parseJsonOrKeyval(where, value, "driver");
      const id = requireString(where, o, "id");
      const driver = requireString(where, o, "driver");
      line.domain.audiodevs.push({ id, driver, where });
    },
  },
  uuid: {
    takesValue: true,
    help: "-uuid UUID  query-uuid's answer",
    apply: (line, value, option) => {
      line.domain.uuid = parseUuid(`${option} ${value}`, value);
    },
  },
  smp: {
    takesValue: true,
    help: "-smp [cpus=]N[,maxcpus=M][,sockets=S][,dies=D][,cores=C][,threads=T]  the vCPUs",
    apply: (line, value, option) => {
      line.domain.smp = parseSmp(`${option} ${value}`, value);
      line.domain.smpWhere = `${option} ${value}`;
    },
  },
  cpu: {
    takesValue: true,
    help: "-cpu MODEL[,feature…]  the vCPU model (its QOM properties come from the recording)",
    apply: (line, value) => {
      line.domain.cpuModel = splitQemuOpts(value)[0]?.[0] ?? "qemu64";
    },
  },
  advertise: {
    takesValue: true,
    help: "--advertise implemented|recorded  what query-qmp-schema/query-commands list (recorded: the real binary's, for libvirt's probe)",
    apply: (line, value, option) => {
      if (value !== "implemented" && value !== "recorded") {
        throw new QemuOptionError(option, `expects 'implemented' or 'recorded', not '${value}'`);
      }
      line.advertise = value;
    },
  },
  "qemu-version": {
    takesValue: true,
    help: "--qemu-version V  the QEMU version to impersonate (default 7.2.22)",
    apply: (line, value) => {
      line.qemuVersion = value;
    },
  },
  package: {
    takesValue: true,
    help: "--package TEXT  query-version's package string",
    apply: (line, value) => {
      line.packageString = value;
    },
  },
  strict: {
    takesValue: false,
    help: "--strict  no x-sim-* commands: only what QEMU has",
    apply: (line) => {
      line.strict = true;
    },
  },
  "guest-acpi-shutdown": {
    takesValue: true,
    help: "--guest-acpi-shutdown MS  the guest honours the ACPI power button: it shuts down MS ms after system_powerdown (default: it ignores the button)",
    apply: (line, value, option) => {
      if (!/^\d+$/.test(value))
        throw new QemuOptionError(option, `expects milliseconds, not '${value}'`);
      line.acpiShutdownMs = Number(value);
    },
  },
  "firmware-resets": {
    takesValue: true,
    help: "--firmware-resets N  guest resets after each reset/wakeup (SeaBIOS: 2 on -machine pc, the default)",
    apply: (line, value, option) => {
      if (!/^\d+$/.test(value))
        throw new QemuOptionError(option, `expects a count, not '${value}'`);
      line.firmwareResets = Number(value);
    },
  },
  "guest-script": {
    takesValue: true,
    help: "--guest-script FILE  guest actions at guest run times (JSON lines, see docs)",
    apply: (line, value) => {
      line.guestScript = value;
    },
  },
};

/** Aliases QEMU has. */
const ALIASES: Readonly<Record<string, string>> = { M: "machine" };

/** Options of {@link parseQemuOptions}. */
export interface ParseQemuOptionsOptions {
  /** More options (or replacements), by name without dashes. */
  extraOptions?: Readonly<Record<string, QemuOptionSpec>> | undefined;
}

/** A fresh, empty command line. */
export function emptyCommandLine(): SimCommandLine {
  return {
    monitors: [],
    startPaused: false,
    actions: {},
    machine: "none",
    nodefaults: false,
    strict: false,
    blockDevices: [],
    nics: [],
    netdevs: [],
    devices: [],
    balloon: false,
    serialPorts: [],
    domain: emptyDomainConfig(),
    extra: {},
    drives: new Map(),
  };
}

/**
 * Parses QEMU-style arguments. `-opt value`, `--opt value` and `--opt=value` all work.
 * Throws {@link QemuOptionError} on an unknown option, a missing value or a bad value.
 */
export function parseQemuOptions(
  argv: readonly string[],
  options: ParseQemuOptionsOptions = {},
): SimCommandLine {
  const table: Record<string, QemuOptionSpec> = { ...QEMU_OPTION_TABLE, ...options.extraOptions };
  const line = emptyCommandLine();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      throw new QemuOptionError(arg, "unexpected argument (disk images are not simulated)");
    }
    let name = arg.replace(/^--?/, "");
    let inline: string | undefined;
    const eq = name.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    name = ALIASES[name] ?? name;
    const spec = Object.hasOwn(table, name) ? table[name] : undefined;
    if (spec === undefined) {
      throw new QemuOptionError(
        arg,
        `invalid option (supported: ${Object.keys(table)
          .map((k) => `-${k}`)
          .join(" ")})`,
      );
    }
    let value = "";
    if (spec.takesValue) {
      if (inline !== undefined) value = inline;
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new QemuOptionError(arg, "requires an argument");
        value = next;
        i++;
      }
    } else if (inline !== undefined) {
      throw new QemuOptionError(arg, "takes no argument");
    }
    spec.apply(line, value, arg);
  }
  finishPlacement(line);
  finishDomainConfig(line);
  return line;
}

// ---------------------------------------------------------------------- PCI and USB placement

/**
 * Drivers that sit on the PCI bus (besides every `*-pci`): what takes a slot on `-machine pc`.
 */
const PCI_DRIVERS = new Set([
  "qemu-xhci",
  "nec-usb-xhci",
  "usb-ehci",
  "ich9-usb-ehci1",
  "piix3-usb-uhci",
  "piix4-usb-uhci",
  "e1000",
  "e1000e",
  "rtl8139",
  "vmxnet3",
  "i6300esb",
  "ahci",
  "nvme",
  "megasas",
  "lsi53c895a",
  "intel-hda",
  "ich9-intel-hda",
  "AC97",
  "ES1370",
  "VGA",
  "cirrus-vga",
  "qxl-vga",
  "bochs-display",
  "ivshmem-plain",
  "ivshmem-doorbell",
  "pvpanic-pci",
]);

/** USB host controllers the simulator places devices on (their bus is `ID.0`). */
const USB_CONTROLLERS = new Set(["qemu-xhci", "nec-usb-xhci"]);

/**
 * USB devices whose vmstate QEMU 7.2 marks unmigratable (hw/usb/dev-network.c,
 * hw/usb/dev-serial.c); the vmstate name is the driver name. Checked on 7.2.22.
 */
const UNMIGRATABLE_USB = new Set(["usb-net", "usb-serial"]);

interface PciSlot {
  /** `addr=` given on the command line, else assigned once all options are read. */
  slot: number | undefined;
}

interface Placement {
  pci: PciSlot[];
  controllers: Array<{ bus: string; pci: PciSlot; nextPort: number }>;
  blockers: Array<{ pci: PciSlot; port: number; vmstate: string; device?: QdevDeviceOptions }>;
}

const placements = new WeakMap<SimCommandLine, Placement>();

/**
 * Records where a `-device` goes: a PCI slot, or a port of a USB controller (numbered from 1 in
 * the order devices are plugged, as 7.2.22 numbers USB 2 ports of qemu-xhci). Returns the
 * record of a non-migratable device, whose `device` the caller sets when the simulator keeps it.
 */
function placeOnBus(
  line: SimCommandLine,
  driver: string,
  opts: ReadonlyMap<string, string>,
): { device?: QdevDeviceOptions } | undefined {
  let p = placements.get(line);
  if (p === undefined) {
    p = { pci: [], controllers: [], blockers: [] };
    placements.set(line, p);
  }
  if (driver.endsWith("-pci") || PCI_DRIVERS.has(driver)) {
    const addr = opts.get("addr");
    const explicit = addr === undefined ? undefined : Number.parseInt(addr.split(".")[0] ?? "", 16);
    const slot: PciSlot = { slot: Number.isNaN(explicit) ? undefined : explicit };
    p.pci.push(slot);
    if (USB_CONTROLLERS.has(driver)) {
      p.controllers.push({ bus: `${opts.get("id") ?? driver}.0`, pci: slot, nextPort: 1 });
    }
    return undefined;
  }
  if (!driver.startsWith("usb-")) return undefined;
  const bus = opts.get("bus");
  const controller =
    bus === undefined ? p.controllers[0] : p.controllers.find((c) => c.bus === bus);
  if (controller === undefined) return undefined;
  const port = controller.nextPort++;
  if (!UNMIGRATABLE_USB.has(driver)) return undefined;
  const blocker: Placement["blockers"][number] = { pci: controller.pci, port, vmstate: driver };
  p.blockers.push(blocker);
  return blocker;
}

/**
 * Once every option is read: PCI slots for the devices without `addr=` (on `-machine pc` the
 * first free one from 2 with `-nodefaults`, from 3 without, where the default VGA has 2; checked
 * on 7.2.22), and the vmstate paths of the non-migratable devices kept by the simulator
 * (`0000:00:SS.0/PORT/NAME`).
 */
function finishPlacement(line: SimCommandLine): void {
  const p = placements.get(line);
  if (p === undefined || line.machine !== "pc") return;
  const taken = new Set(p.pci.flatMap((s) => (s.slot === undefined ? [] : [s.slot])));
  let next = line.nodefaults ? 2 : 3;
  for (const s of p.pci) {
    if (s.slot !== undefined) continue;
    while (taken.has(next)) next++;
    s.slot = next;
    taken.add(next);
  }
  for (const b of p.blockers) {
    if (b.device === undefined || b.pci.slot === undefined) continue;
    const slot = b.pci.slot.toString(16).padStart(2, "0");
    b.device.unmigratable = `0000:00:${slot}.0/${b.port}/${b.vmstate}`;
  }
}

/** One help line per option, for `qmpkit sim --help`. */
export function qemuOptionsHelp(extra: Readonly<Record<string, QemuOptionSpec>> = {}): string {
  return Object.values({ ...QEMU_OPTION_TABLE, ...extra })
    .map((s) => `  ${s.help}`)
    .join("\n");
}

/**
 * `AudiodevDriver` of 7.2 (qapi/audio.json): its schema has no command that shows the enum
 * (`query-audiodevs` came in 8.2), so the recording cannot tell.
 */
const AUDIODEV_DRIVERS_7_2 = [
  "none",
  "alsa",
  "coreaudio",
  "dbus",
  "dsound",
  "jack",
  "oss",
  "pa",
  "sdl",
  "sndio",
  "spice",
  "wav",
];

/** Properties of the pc machines a command line sets (`-machine pc-…,KEY=…`), 7.2 and 10.0. */
const MACHINE_PROPERTIES = new Set([
  "usb",
  "dump-guest-core",
  "mem-merge",
  "vmport",
  "smm",
  "graphics",
  "kernel_irqchip",
  "kernel-irqchip",
  "acpi",
  "pit",
  "pic",
  "sata",
  "smbus",
  "i8042",
  "hpet",
  "max-ram-below-4g",
  "nvdimm",
  "hmat",
  "suppress-vmdesc",
  "confidential-guest-support",
  "pflash0",
  "pflash1",
  "firmware",
  "sgx-epc",
  "nvdimm-persistence",
  "memory-encryption",
  "boot",
  "default-bus-bypass-iommu",
  "bus-lock-ratelimit",
  "x-oem-id",
  "x-oem-table-id",
  "fd-bootchk",
]);

/**
 * The checks QEMU makes once the whole line is read, in its order (qemu_create_late_backends,
 * qemu_create_machine, device creation): the release's enums for `-netdev` types, `-audiodev`
 * drivers and `-object` types, secrets' contents, `-smp`, the memory backend, device types
 * and the chardevs and block nodes devices name.
 */
function finishDomainConfig(line: SimCommandLine): void {
  const d = line.domain;
  let version: string;
  try {
    version = qemuProfile(line.qemuVersion).id;
  } catch {
    return; // the unknown release is reported by the machine, with the list
  }
  const recorded = recordedProfile(version);
  // The enums come from the release's recorded schema (what QEMU's parser checks against).
  const accepts = (values: readonly string[] | undefined, v: string) =>
    values === undefined || values.includes(v);
  const netdevTypes = recorded?.enumOfMember("netdev_add", "type");
  const objectTypes = recorded?.enumOfMember("object-add", "qom-type");
  const audiodevDrivers =
    recorded?.enumOfMember("query-audiodevs", "driver", "ret") ?? AUDIODEV_DRIVERS_7_2;
  for (const n of d.netdevs) {
    if (!accepts(netdevTypes, n.type))
      throw new QemuOptionError(n.where, `Parameter 'type' does not accept value '${n.type}'`);
  }
  for (const a of d.audiodevs) {
    if (!accepts(audiodevDrivers, a.driver))
      throw new QemuOptionError(a.where, `Parameter 'driver' does not accept value '${a.driver}'`);
  }
  for (const o of d.objects) {
    if (!accepts(objectTypes, o.qomType))
      throw new QemuOptionError(
        o.where,
        `Parameter 'qom-type' does not accept value '${o.qomType}'`,
      );
  }
  for (const o of d.objects) {
    if (o.qomType === "secret" && o.props.file === undefined && o.props.data === undefined)
      throw new UnlocatedOptionError("Either 'file' or 'data' must be provided");
  }
  if (d.smp !== undefined) checkSmp(d.smp, qemuProfile(version).has("smp-modules"));
  if (
    d.memoryBackend !== undefined &&
    !d.objects.some((o) => o.id === d.memoryBackend && o.qomType.startsWith("memory-backend-"))
  ) {
    throw new UnlocatedOptionError(`Memory backend '${d.memoryBackend}' not found`);
  }
  const backend = d.objects.find((o) => o.id === d.memoryBackend);
  if (backend !== undefined && line.memoryBytes === undefined) {
    line.memoryBytes = parseSizeValue(backend.where, "size", backend.props.size);
  }
  const profile = recorded;
  if (profile !== undefined) {
    const models = profile.answer("query-cpu-definitions", {}) as Array<{ name?: unknown }>;
    if (!models.some((m) => m.name === d.cpuModel)) {
      throw new UnlocatedOptionError(`unable to find CPU model '${d.cpuModel}'`);
    }
  }
  const nodeNames = new Set(d.blockNodes.map((n) => n.nodeName));
  for (const p of d.peripherals) {
    if (profile !== undefined && !isDeviceType(profile, p.driver)) {
      throw new QemuOptionError(p.where, `'${p.driver}' is not a valid device model name`);
    }
    const drive = p.props.drive;
    if (typeof drive === "string" && !line.drives.has(drive) && !nodeNames.has(drive)) {
      const owner = p.driver.startsWith("virtio-blk") ? "virtio-blk-device" : p.driver;
      throw new QemuOptionError(p.where, `Property '${owner}.drive' can't find value '${drive}'`);
    }
  }
  if (profile !== undefined) {
    for (const { driver, where } of d.anonymousDevices) {
      if (!isDeviceType(profile, driver)) {
        throw new QemuOptionError(where, `'${driver}' is not a valid device model name`);
      }
    }
  }
}

/**
 * Checks the chardevs the devices name (`Property 'serial.chardev' can't find value 'x'`):
 * for a launcher whose line declares chardevs (`-chardev` is a drop-in option of the CLI).
 */
export function checkDeviceChardevs(line: SimCommandLine): void {
  const ids = new Set(line.domain.chardevs.map((c) => c.id));
  for (const p of line.domain.peripherals) {
    const chardev = p.props.chardev;
    if (typeof chardev === "string" && !ids.has(chardev)) {
      const owner = p.driver === "isa-serial" ? "serial" : p.driver;
      throw new QemuOptionError(
        p.where,
        `Property '${owner}.chardev' can't find value '${chardev}'`,
      );
    }
  }
}

/** Whether the recorded type tree has `driver` as a device type one can create. */
function isDeviceType(
  profile: NonNullable<ReturnType<typeof recordedProfile>>,
  driver: string,
): boolean {
  try {
    profile.answer("device-list-properties", { typename: driver });
    return true;
  } catch (e) {
    // Not recorded but a device type: the profile cannot list its properties, QEMU could.
    return /has no recorded answer/.test((e as Error).message);
  }
}
