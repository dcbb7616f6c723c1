/**
 * Devices and host-side subsystems of the simulated machine: just enough of each for its QMP
 * events to arise as they do in QEMU, driven by the commands QEMU drives them with.
 *
 * | subsystem | commands | events |
 * |---|---|---|
 * | block devices | `eject`, `cont` (clears io-status) | BLOCK_IO_ERROR (+ STOP, `io-error` when the action is stop), DEVICE_TRAY_MOVED |
 * | qdev devices | `device_del` | DEVICE_DELETED once the guest acknowledges (needs running vCPUs) |
 * | NICs | `query-rx-filter` | NIC_RX_FILTER_CHANGED, once until the next `query-rx-filter` of that NIC |
 * | balloon | `balloon`, `query-balloon` | BALLOON_CHANGE when the guest driver reaches the target |
 * | virtio-serial ports | — | VSERPORT_CHANGE |
 * | migration | `migrate-set-capabilities` (`events`), `migrate`, `query-migrate`, `migrate_cancel` | MIGRATION, MIGRATION_PASS |
 * | dump | `dump-guest-memory`, `query-dump` | DUMP_COMPLETED |
 * | block jobs | `block-stream`, `block-job-cancel`, `query-block-jobs` | BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED |
 *
 * Error texts and classes were checked against QEMU 7.2.22 (`eject` of an unknown device →
 * DeviceNotFound `Device 'x' not found`; `balloon` without a balloon → DeviceNotActive; a second
 * `device_del` → `Device net0 is already in the process of unplug`; …).
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../base/json.js";
import type { BlockStreamArguments, MigrationCapabilityStatus } from "../generated/index.js";
import type { MachineCore } from "./machine-core.js";
import { QmpReplyError } from "../server/reply-error.js";
import { type MigrationFailure, SimMigration, type SimMigrationOptions } from "./migration.js";
import { versionHasEvent, versionHasMember } from "./schema-info.js";

/** The timer interface the simulator needs (structurally the server's `ServerClock`). */
export interface SimClock {
  nowMicros(): number;
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(timer: never): void;
}

/** A block backend with its guest device. */
export interface BlockDeviceOptions {
  /** The `-drive` id / BlockBackend name (`device` in events). */
  id: string;
  /** The qdev id of the guest device (`id` in DEVICE_TRAY_MOVED). Default: `<id>-dev`. */
  qdevId?: string | undefined;
  /** The block node name. Default `#block<N>`-style: `node-<id>`. */
  nodeName?: string | undefined;
  /** Has a tray (CD-ROM). Default false. */
  removable?: boolean | undefined;
  /** The guest locked the tray (eject needs `force`). Default false. */
  locked?: boolean | undefined;
  /**
   * `werror`: what a failed write does. Default `enospc` (QEMU's): stop on a full disk, else
   * report to the guest.
   */
  werror?: BlockErrorAction | undefined;
  /** `rerror`: what a failed read does. Default `report` (QEMU's). */
  rerror?: BlockErrorAction | undefined;
  /** Bytes a `block-stream` has to copy from a backing file. Default 0: no backing file. */
  backingBytes?: number | undefined;
}

/** `-drive werror=…/rerror=…` (BlockdevOnError, without `auto`). */
export type BlockErrorAction = "report" | "ignore" | "stop" | "enospc";

/** A guest device that can be unplugged with `device_del`. */
export interface QdevDeviceOptions {
  id: string;
  /** The device type, e.g. `virtio-net-pci`. */
  driver?: string | undefined;
  /** Whether its bus supports hot-unplug. Default true. */
  hotpluggable?: boolean | undefined;
  /** Bus name for the "does not support hotplugging" error. Default `pci.0`. */
  bus?: string | undefined;
  /**
   * Who completes a `device_del`: `guest` (PCI/ACPI hot-unplug: the guest must acknowledge) or
   * `host` (USB devices, virtio-serial ports: at once). Default: by driver.
   */
  unplug?: "guest" | "host" | undefined;
  /**
   * The device cannot be migrated (QEMU 7.2: `usb-net`, `usb-serial`, whose vmstate is marked
   * unmigratable): its vmstate instance path, e.g. `0000:00:02.0/1/usb-serial` (controller's PCI
   * address / USB port / vmstate name), which `query-migrate`'s `blocked-reasons` and `migrate`'s
   * refusal name. Unplugging the device lifts the block.
   */
  unmigratable?: string | undefined;
}

/** A NIC (`-device virtio-net-pci|e1000|rtl8139,id=…`). */
export interface NicOptions {
  id: string;
  /** The device type; it decides whether a virtio backend child goes with it. */
  driver: string;
}

/** The devices a simulated machine has. Default: none, as `-nodefaults`. */
export interface SimDevicesOptions {
  blockDevices?: readonly BlockDeviceOptions[] | undefined;
  /**
   * NICs, with rx-filter events; a bare id is a `virtio-net-pci`. Each is also a qdev device.
   */
  nics?: readonly (string | NicOptions)[] | undefined;
  /** Host network backends (`-netdev` ids): net clients that are not NICs. */
  netdevs?: readonly string[] | undefined;
  /** Other guest devices. */
  devices?: readonly QdevDeviceOptions[] | undefined;
  /** A virtio balloon: its initial `actual` is the RAM size. Default false. */
  balloon?: boolean | undefined;
  /** virtio-serial port ids. */
  serialPorts?: readonly string[] | undefined;
  /** RAM in bytes (`-m`). Default 128 MiB (QEMU's default). */
  memoryBytes?: number | undefined;
  /** How long the guest takes to act (device_del ack, balloon, block job steps), in ms of run time. Default 10. */
  guestDelayMs?: number | undefined;
  /** The RTC's QOM path. Default `/machine/unattached/device[9]` (7.2.22 `-M pc`). */
  rtcQomPath?: string | undefined;
  /**
   * The initial migration bandwidth in bytes per second (QEMU's `max-bandwidth` parameter, which
   * `migrate-set-parameters` changes). Default 134217728 (128 MiB/s, QEMU's default). A small
   * value keeps a migration `active` for a while.
   */
  migrationBandwidth?: number | undefined;
  /**
   * Which outgoing migrations fail and how (the simulator does not connect anywhere). Default:
   * all succeed. E.g. `(uri) => uri.startsWith("exec:false") ? { phase: "transfer", desc:
   * "Unable to write to command: Broken pipe" } : undefined`.
   */
  migrationFailure?: ((uri: string) => MigrationFailure | undefined) | undefined;
}

/** ROM that `-machine pc -nodefaults` migrates besides `-m` (7.2.22: 130 pages). */
const PC_FIRMWARE_BYTES = 130 * 4096;
/** Of that, pages that hold data (7.2.22: 49 normal pages from a fresh `-machine pc -S`). */
const PC_FIRMWARE_DATA_PAGES = 49;

/**
 * What a migration of this machine sends. `-machine none` has no RAM unless `-m` gives some;
 * `-machine pc` has `-m` (default 128 MiB) plus its firmware. A guest that has run uses a little
 * of its RAM (one page in 512 holds data, `guestRan`); the rest are zero pages, as all of a fresh
 * `-S` machine's RAM is. The device state at the switch-over: 92 bytes for `pc`, 12 for `none`
 * (7.2.22, idle machines).
 */
function migrationRam(
  machine: "none" | "pc",
  options: SimDevicesOptions,
  guestRan: () => boolean,
  blockers: () => string[],
): SimMigrationOptions {
  const pc = machine === "pc";
  const memory = options.memoryBytes ?? (pc ? 128 * 1024 * 1024 : 0);
  const used = () => (guestRan() ? Math.floor(memory / 4096 / 512) : 0);
  return {
    bandwidth: options.migrationBandwidth,
    failure: options.migrationFailure,
    blockers,
    ramBytes: memory + (pc ? PC_FIRMWARE_BYTES : 0),
    normalPages: () => (pc ? PC_FIRMWARE_DATA_PAGES : 0) + used(),
    deviceStateBytes: pc ? 92 : memory > 0 ? 12 : 0,
  };
}

interface BlockDevice {
  id: string;
  qdevId: string;
  nodeName: string;
  removable: boolean;
  locked: boolean;
  trayOpen: boolean;
  inserted: boolean;
  werror: BlockErrorAction;
  rerror: BlockErrorAction;
  ioStatus: "ok" | "failed" | "nospace";
  backingBytes: number;
}

interface QdevDevice {
  id: string;
  driver: string;
  hotpluggable: boolean;
  bus: string;
  unplug: "guest" | "host";
  unplugPending: boolean;
  /** The guest's run time (ms) when `device_del` asked for it (see `deviceDel`). */
  unplugRequestedAtMs: number;
  nic: boolean;
  /** A NIC's place among all NICs created, which gives its default MAC; -1 if not a NIC. */
  macIndex: number;
  rxFilterNotify: boolean;
  unmigratable: string | undefined;
}

interface BlockJob {
  device: string;
  type: string;
  len: number;
  offset: number;
  speed: number;
  timer: unknown;
}

/** Where the device layer sends its effects. */
export interface DeviceHost {
  readonly core: MachineCore;
  readonly clock: SimClock;
  emit(name: string, data?: JsonObject): void;
  /** QEMU's stderr (e.g. why a migration failed). Default: dropped. */
  stderr?(text: string): void;
}

/** The simulated devices. */
export class SimDevices {
  readonly blocks = new Map<string, BlockDevice>();
  readonly qdevs = new Map<string, QdevDevice>();
  readonly serialPorts = new Map<string, boolean>();
  readonly netdevs: ReadonlySet<string>;
  balloonActual: number | undefined;
  readonly memoryBytes: number;
  readonly guestDelayMs: number;
  readonly rtcQomPath: string;
  /** The migration subsystem, made on first use (see {@link SimDevices.migration}). */
  #migration: SimMigration | undefined;
  readonly #options: SimDevicesOptions;
  /** The guest has run (its RAM then holds some data; see `migrationRam`). */
  #guestRan: boolean;
  #dump: { status: string; completed: number; total: number } | undefined;
  readonly #jobs = new Map<string, BlockJob>();
  /** Guest work waiting for the vCPUs to run. */
  #waiting: Array<() => void> = [];
  /** QEMU_CLOCK_VIRTUAL: run time before the current run, and when the current run began (µs). */
  #virtualBeforeUs = 0;
  #runningSinceUs: number | undefined;

  constructor(
    readonly host: DeviceHost,
    options: SimDevicesOptions = {},
  ) {
    this.memoryBytes = options.memoryBytes ?? 128 * 1024 * 1024;
    this.guestDelayMs = options.guestDelayMs ?? 10;
    this.rtcQomPath = options.rtcQomPath ?? host.core.profile.pcRtcQomPath;
    this.#options = options;
    this.#guestRan = host.core.state === "running";
    // A bad bandwidth is refused when the machine is made, not at its first migration command.
    if (options.migrationBandwidth !== undefined) void this.migration;
    for (const b of options.blockDevices ?? []) {
      this.blocks.set(b.id, {
        id: b.id,
        qdevId: b.qdevId ?? `${b.id}-dev`,
        nodeName: b.nodeName ?? `node-${b.id}`,
        removable: b.removable ?? false,
        locked: b.locked ?? false,
        trayOpen: false,
        inserted: true,
        werror: b.werror ?? "enospc",
        rerror: b.rerror ?? "report",
        ioStatus: "ok",
        backingBytes: b.backingBytes ?? 0,
      });
    }
    this.netdevs = new Set(options.netdevs ?? []);
    for (const nic of options.nics ?? []) {
      this.#addQdev(typeof nic === "string" ? { id: nic, driver: "virtio-net-pci" } : nic, true);
    }
    for (const d of options.devices ?? []) this.#addQdev(d, false);
    if (options.balloon) this.balloonActual = this.memoryBytes;
    for (const id of options.serialPorts ?? []) this.serialPorts.set(id, false);
    host.core.beforeCont.push(() => {
      for (const b of this.blocks.values()) b.ioStatus = "ok"; // blk_iostatus_reset
    });
    host.core.onReset.push(() => this.#ejectPendingOnReset());
    if (host.core.state === "running") this.#runningSinceUs = host.clock.nowMicros();
    host.core.runState.onChange((_from, to) => {
      if (to !== "running") {
        if (this.#runningSinceUs !== undefined) {
          this.#virtualBeforeUs += host.clock.nowMicros() - this.#runningSinceUs;
          this.#runningSinceUs = undefined;
        }
        return;
      }
      this.#runningSinceUs ??= host.clock.nowMicros();
      this.#guestRan = true;
      this.#flushGuestWork();
    });
  }

  /**
   * Migration: capabilities, parameters, the outgoing state machine, the incoming listener.
   * Made on first use, so that the many machines that never migrate do not each carry it.
   */
  get migration(): SimMigration {
    this.#migration ??= new SimMigration(
      this.host,
      migrationRam(
        this.host.core.machine,
        this.#options,
        () => this.#guestRan,
        () => this.#migrationBlockers(),
      ),
    );
    return this.#migration;
  }

  /** The instance paths of the devices that block migration, in the order they were created. */
  #migrationBlockers(): string[] {
    const paths: string[] = [];
    for (const d of this.qdevs.values())
      if (d.unmigratable !== undefined) paths.push(d.unmigratable);
    return paths;
  }

  #nicsCreated = 0;

  #addQdev(d: QdevDeviceOptions, nic: boolean): void {
    this.qdevs.set(d.id, {
      id: d.id,
      driver: d.driver ?? "virtio-net-pci",
      hotpluggable: d.hotpluggable ?? true,
      bus: d.bus ?? "pci.0",
      unplug:
        d.unplug ??
        (/^(usb-|virtserialport$|virtconsole$)/.test(d.driver ?? "") ? "host" : "guest"),
      unplugPending: false,
      unplugRequestedAtMs: 0,
      nic,
      macIndex: nic ? this.#nicsCreated++ : -1,
      rxFilterNotify: true,
      unmigratable: d.unmigratable,
    });
  }

  #disposed = false;

  /** Stops every timer and guest action (the process ended or was torn down). */
  dispose(): void {
    this.#disposed = true;
    const clear = (t: unknown) => this.host.clock.clearTimer(t as never);
    this.#migration?.dispose();
    for (const job of this.#jobs.values()) if (job.timer !== undefined) clear(job.timer);
    this.#waiting = [];
  }

  // ------------------------------------------------------------------ guest work

  /** Runs `fn` after the guest's reaction time, counted only while its vCPUs run. */
  #guestWork(fn: () => void): void {
    const attempt = () => {
      if (this.host.core.hasExited || this.#disposed) return;
      if (this.host.core.state === "running") fn();
      else this.#waiting.push(attempt);
    };
    if (this.host.core.state === "running") {
      this.host.clock.setTimer(attempt, this.guestDelayMs);
    } else {
      this.#waiting.push(() => this.host.clock.setTimer(attempt, this.guestDelayMs));
    }
  }

  /** The guest's virtual clock in whole ms: it advances only while the vCPUs run (QEMU_CLOCK_VIRTUAL). */
  virtualClockMs(): number {
    const running =
      this.#runningSinceUs === undefined ? 0 : this.host.clock.nowMicros() - this.#runningSinceUs;
    return Math.floor((this.#virtualBeforeUs + running) / 1000);
  }

  #flushGuestWork(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const fn of waiting) fn();
  }

  // ------------------------------------------------------------------ block devices

  #block(device: string | undefined, id: string | undefined): BlockDevice {
    for (const b of this.blocks.values()) {
      if ((device !== undefined && b.id === device) || (id !== undefined && b.qdevId === id)) {
        return b;
      }
    }
    throw new QmpReplyError("DeviceNotFound", `Device '${device ?? id ?? ""}' not found`);
  }

  /** `eject {device?, id?, force?}`: opens the tray (DEVICE_TRAY_MOVED) and removes the medium. */
  eject(args: JsonObject): void {
    const device = typeof args.device === "string" ? args.device : undefined;
    const id = typeof args.id === "string" ? args.id : undefined;
    if ((device === undefined) === (id === undefined)) {
      throw new QmpReplyError("GenericError", "Need exactly one of 'device' and 'id'");
    }
    const b = this.#block(device, id);
    if (!b.removable) {
      throw new QmpReplyError("GenericError", `Device '${device ?? id}' is not removable`);
    }
    if (b.locked && args.force !== true) {
      // The guest is asked to open its tray; it does so later.
      this.#guestWork(() => this.guestOpenTray(b.id));
      throw new QmpReplyError(
        "GenericError",
        `Device '${device ?? id}' is locked and force was not specified, wait for tray to open and try again`,
      );
    }
    if (!b.trayOpen) this.#moveTray(b, true);
    b.inserted = false;
  }

  #moveTray(b: BlockDevice, open: boolean): void {
    b.trayOpen = open;
    this.host.emit("DEVICE_TRAY_MOVED", { device: b.id, id: b.qdevId, "tray-open": open });
  }

  /** The guest opened (or closed) the tray of a removable drive. */
  guestOpenTray(device: string, open = true): void {
    this.host.core.assertGuestRunning("tray move");
    const b = this.#block(device, undefined);
    if (b.trayOpen !== open) this.#moveTray(b, open);
  }

  /**
   * The guest's I/O on `device` failed: BLOCK_IO_ERROR with the drive's error action; with
   * `stop` the VM stops in `io-error` (the stop is requested before the event, so STOP follows
   * it: block/block-backend.c `blk_error_action`).
   */
  guestIoError(
    device: string,
    options: { operation?: "read" | "write"; nospace?: boolean; reason?: string } = {},
  ): void {
    this.host.core.assertGuestRunning("I/O error");
    const b = this.#block(device, undefined);
    const nospace = options.nospace ?? false;
    const operation = options.operation ?? "write";
    const configured = operation === "read" ? b.rerror : b.werror;
    // blk_get_error_action: enospc stops only on a full disk.
    const action = configured === "enospc" ? (nospace ? "stop" : "report") : configured;
    // Schema order: qom-path (9.2+) first, then device, node-name, operation, action, nospace,
    // reason (QEMU inserts members so; it decides the order of keys sharing a hash bucket).
    const data: JsonObject = versionHasMember(
      "BLOCK_IO_ERROR",
      "qom-path",
      this.host.core.profile.id,
    )
      ? { "qom-path": `/machine/peripheral/${b.qdevId}` }
      : {};
    data.device = b.id;
    data["node-name"] = b.nodeName;
    data.operation = operation;
    data.action = action;
    // QEMU sends `nospace` whenever the device keeps an I/O status, which every device the
    // simulator models does (block/block-backend.c send_qmp_error_event); seen false on 7.2.22
    // and 10.0.2.
    data.nospace = nospace;
    data.reason = options.reason ?? (nospace ? "No space left on device" : "Input/output error");
    this.applyBlockIoError(data);
  }

  /** BLOCK_IO_ERROR and its follow-up (also for `x-sim-inject`). */
  applyBlockIoError(data: JsonObject): void {
    const core = this.host.core;
    const b = typeof data.device === "string" ? this.blocks.get(data.device) : undefined;
    if (data.action === "stop") {
      if (b !== undefined) b.ioStatus = data.nospace === true ? "nospace" : "failed";
      this.host.emit("BLOCK_IO_ERROR", data);
      core.requestVmStop("io-error");
      core.runMainLoop();
    } else {
      this.host.emit("BLOCK_IO_ERROR", data);
    }
  }

  // ------------------------------------------------------------------ qdev unplug

  /** `device_del {id}`: the guest acknowledges later; DEVICE_DELETED then. */
  deviceDel(id: string): void {
    const d = this.qdevs.get(id);
    if (d === undefined) throw new QmpReplyError("DeviceNotFound", `Device '${id}' not found`);
    if (!d.hotpluggable) {
      throw new QmpReplyError("GenericError", `Bus '${d.bus}' does not support hotplugging`);
    }
    // A pending PCI unplug "expires" at the virtual-clock ms of its request (hw/acpi/pcihp.c
    // sets pending_deleted_expires_ms to now; qdev-monitor.c refuses while it is 0 or still
    // ahead), so a repeated device_del is refused only when the first came before the guest had
    // run a millisecond (from -S). Otherwise it raises the request again, paused or not; the
    // guest's one eject gives one DEVICE_DELETED. Seen on QEMU 7.2.22 and 10.0.2.
    if (d.unplugPending && (d.unplug === "host" || d.unplugRequestedAtMs === 0)) {
      throw new QmpReplyError("GenericError", `Device ${id} is already in the process of unplug`);
    }
    d.unplugPending = true;
    d.unplugRequestedAtMs = this.virtualClockMs();
    if (d.unplug === "host") {
      // USB and virtio-serial ports unplug without the guest; 7.2.22 sends DEVICE_DELETED just
      // after the reply.
      this.host.clock.setTimer(() => {
        if (!this.#disposed && !this.host.core.hasExited) this.removeDevice(id);
      }, 0);
    } else {
      // The guest answers this request, if it still stands (it may have ejected meanwhile).
      this.#guestWork(() => {
        if (this.qdevs.get(id)?.unplugPending === true) this.guestAckUnplug(id);
      });
    }
  }

  /**
   * The guest released a device after `device_del`: DEVICE_DELETED{device, path}. A virtio PCI
   * proxy first loses its `virtio-backend` child, which has no id: DEVICE_DELETED{path} comes
   * before the device's own (every unrealized device reports itself, qdev `device_unparent`).
   * Other PCI devices (an `e1000`) have no such child: only their own event. On `-machine pc`
   * the guest's acknowledgement is its write of the slot's bit to the PIIX4 eject register
   * (hw/acpi/pcihp.c); compared with QEMU 7.2.22 and 10.0.2 (test/conformance/guest-devices).
   * That write needs no request: QEMU ejects whatever hot-pluggable PCI device is in the slot,
   * so the guest may release one that no `device_del` asked for (seen on both versions). A
   * device that is not hot-pluggable, or that the host unplugs itself (USB), is left alone.
   */
  guestAckUnplug(id: string): void {
    const d = this.qdevs.get(id);
    if (d === undefined || !d.hotpluggable || d.unplug !== "guest") return;
    if (/^virtio-.*-pci/.test(d.driver)) {
      this.host.emit("DEVICE_DELETED", { path: `/machine/peripheral/${id}/virtio-backend` });
    }
    this.removeDevice(id);
  }

  /**
   * A system reset carries out the PCI unplugs the guest has not acknowledged (hw/acpi/pcihp.c
   * runs every pending removal when the PIIX4 resets): their DEVICE_DELETED follow the RESET
   * event and the command's reply, as QEMU 7.2.22 and 10.0.2 showed for a `system_reset` with
   * a `device_del` pending since `-S`.
   */
  #ejectPendingOnReset(): void {
    const pending = [...this.qdevs.values()].filter((d) => d.unplugPending && d.unplug === "guest");
    if (pending.length === 0) return;
    this.host.clock.setTimer(() => {
      if (this.#disposed || this.host.core.hasExited) return;
      for (const d of pending) if (this.qdevs.get(d.id) === d) this.guestAckUnplug(d.id);
    }, 0);
  }

  /** Removes a device and emits DEVICE_DELETED (also the follow-up of an injected one). */
  removeDevice(id: string, path = `/machine/peripheral/${id}`): void {
    // An unplugged balloon takes its handler with it (hw/virtio/virtio-balloon.c unrealize):
    // `balloon` and `query-balloon` are DeviceNotActive again (seen on QEMU 7.2.22 and 10.0.2).
    if (this.qdevs.get(id)?.driver.startsWith("virtio-balloon")) this.balloonActual = undefined;
    this.qdevs.delete(id);
    this.host.emit("DEVICE_DELETED", { device: id, path });
  }

  // ------------------------------------------------------------------ NICs

  /**
   * `query-rx-filter {name?}`: re-arms NIC_RX_FILTER_CHANGED for the NICs it reports. Only
   * virtio-net answers it (net/net.c qmp_query_rx_filter: a NIC without the hook is an error when
   * named and skipped in the list, as an `e1000` on QEMU 7.2.22 and 10.0.2). The default MAC
   * counts every NIC created (net/net.c qemu_macaddr_default_if_unset), whatever its model.
   */
  queryRxFilter(name: string | undefined): JsonValue[] {
    const nics = [...this.qdevs.values()].filter((d) => d.nic);
    let chosen = nics.filter(isVirtioNet);
    if (name !== undefined) {
      const named = nics.find((d) => d.id === name);
      if (named === undefined) {
        if (this.netdevs.has(name)) {
          throw new QmpReplyError("GenericError", `net client(${name}) isn't a NIC`);
        }
        throw new QmpReplyError("GenericError", `invalid net client name: ${name}`);
      }
      if (!isVirtioNet(named)) {
        throw new QmpReplyError(
          "GenericError",
          `net client(${name}) doesn't support rx-filter querying`,
        );
      }
      chosen = [named];
    }
    return chosen.map((d) => {
      d.rxFilterNotify = true;
      return rxFilterInfo(d.id, d.macIndex);
    });
  }

  /** The guest changed a NIC's receive filter: the event goes out once until the next query. */
  guestRxFilterChange(nic: string): void {
    this.host.core.assertGuestRunning("rx-filter change");
    const d = this.qdevs.get(nic);
    if (d === undefined || !d.nic) {
      throw new QmpReplyError("GenericError", `invalid net client name: ${nic}`);
    }
    // Only virtio-net reports filter changes (hw/net/virtio-net.c rxfilter_notify).
    if (!isVirtioNet(d)) {
      throw new QmpReplyError("GenericError", `net client(${nic}) has no rx-filter events`);
    }
    if (!d.rxFilterNotify) return;
    d.rxFilterNotify = false;
    this.host.emit("NIC_RX_FILTER_CHANGED", {
      name: nic,
      path: `/machine/peripheral/${nic}/virtio-backend`,
    });
  }

  // ------------------------------------------------------------------ balloon

  #requireBalloon(): number {
    if (this.balloonActual === undefined) {
      throw new QmpReplyError("DeviceNotActive", "No balloon device has been activated");
    }
    return this.balloonActual;
  }

  /** `query-balloon`. */
  queryBalloon(): JsonObject {
    return { actual: this.#requireBalloon() };
  }

  /**
   * `balloon {value}`: the guest driver moves toward the target, then BALLOON_CHANGE. QEMU asks
   * the guest for whole 4 KiB pages, `num_pages` = (RAM − target) / 4096 rounded down, a target
   * above the RAM size asking for none (hw/virtio/virtio-balloon.c, virtio_balloon_to_target):
   * so a driver that follows reports RAM − num_pages × 4096, a target rounded up to a page.
   */
  balloon(value: number): void {
    this.#requireBalloon();
    if (value <= 0) throw new QmpReplyError("GenericError", "Parameter 'target' expects a size");
    const pages = Math.floor((this.memoryBytes - Math.min(value, this.memoryBytes)) / 4096);
    this.#guestWork(() => {
      // The balloon may have been unplugged meanwhile: then no driver is left to answer.
      if (this.balloonActual !== undefined)
        this.guestBalloonChange(this.memoryBytes - pages * 4096);
    });
  }

  /**
   * The guest balloon driver reports a size (BALLOON_CHANGE, throttled by the server). QEMU
   * emits only when the reported `actual` changes (hw/virtio/virtio-balloon.c, set_config): a
   * driver asked for the size it has already reported writes nothing new, and no event follows
   * (seen on QEMU 7.2.22 and 10.0.2 with a tiny guest driver).
   */
  guestBalloonChange(actual: number): void {
    this.host.core.assertGuestRunning("balloon change");
    const before = this.#requireBalloon();
    if (actual === before) return;
    this.balloonActual = actual;
    this.host.emit("BALLOON_CHANGE", { actual });
  }

  // ------------------------------------------------------------------ virtio-serial

  /** The guest opened or closed a virtio-serial port: VSERPORT_CHANGE (throttled per `id`). */
  guestSerialPort(id: string, open: boolean): void {
    this.host.core.assertGuestRunning("serial port change");
    if (!this.serialPorts.has(id)) {
      throw new QmpReplyError("DeviceNotFound", `Device '${id}' not found`);
    }
    this.serialPorts.set(id, open);
    this.host.emit("VSERPORT_CHANGE", { id, open });
  }

  // ------------------------------------------------------------------ migration

  /** Whether the `events` migration capability is on (MIGRATION and MIGRATION_PASS are sent). */
  get migrationEvents(): boolean {
    return this.#migration?.capability("events") ?? false;
  }

  /** `migrate-set-capabilities` (see {@link SimMigration.setCapabilities}). */
  setMigrationCapabilities(caps: readonly MigrationCapabilityStatus[]): void {
    this.migration.setCapabilities(caps);
  }

  /** `query-migrate-capabilities`. */
  queryMigrationCapabilities(): JsonValue[] {
    return this.migration.queryCapabilities();
  }

  /**
   * `migrate {uri}`: MIGRATION setup before the reply; then from the migration thread a first
   * dirty-bitmap sync (MIGRATION_PASS 1), `active`, passes over memory at the migration
   * bandwidth, the switch-over (the VM is stopped into `finish-migrate`: STOP if it ran), the
   * last pass, `completed`, and `postmigrate` (as 7.2.22 does for an idle guest).
   */
  migrate(uri: string, options: { resume?: boolean | undefined } = {}): void {
    this.migration.migrate(uri, options);
  }

  /** `migrate_cancel`: `cancelling` now, `cancelled` at the migration's next step. */
  migrateCancel(): void {
    this.migration.cancel();
  }

  /** `query-migrate`. */
  queryMigrate(): JsonObject {
    return this.migration.query();
  }

  // ------------------------------------------------------------------ dump

  /** Whether a detached dump runs (stop and cont are refused meanwhile). */
  get dumpInProgress(): boolean {
    return this.#dump?.status === "active";
  }

  /**
   * `dump-guest-memory {paging, protocol, detach?}`: a VM that runs is stopped for the dump and
   * resumed afterwards; DUMP_COMPLETED precedes the reply unless `detach`.
   */
  dumpGuestMemory(args: JsonObject): void {
    const core = this.host.core;
    const protocol = typeof args.protocol === "string" ? args.protocol : "";
    if (this.dumpInProgress) {
      throw new QmpReplyError("GenericError", "There is a dump in process, please wait.");
    }
    if (!protocol.startsWith("file:") && !protocol.startsWith("fd:")) {
      throw new QmpReplyError("GenericError", "Invalid parameter 'protocol'");
    }
    const total = this.memoryBytes + 262_144; // RAM plus the ROM/option regions QEMU counts (7.2.22, -m 64)
    const resume = core.state === "running";
    if (resume) core.vmStop("save-vm");
    this.#dump = { status: "active", completed: 0, total };
    const finish = () => {
      if (core.hasExited || this.#disposed) return;
      this.#dump = { status: "completed", completed: total, total };
      core.dumpInProgress = false;
      this.host.emit("DUMP_COMPLETED", { result: { ...this.#dump } });
      if (resume) core.vmStart();
    };
    if (args.detach === true) {
      core.dumpInProgress = true;
      this.host.clock.setTimer(finish, this.guestDelayMs);
    } else {
      finish();
    }
  }

  /** `query-dump`. */
  queryDump(): JsonObject {
    return this.#dump === undefined
      ? { status: "none", completed: 0, total: 0 }
      : { ...this.#dump };
  }

  // ------------------------------------------------------------------ block jobs

  /**
   * JOB_STATUS_CHANGE{id, status} (the job state machine, job.c); only in releases whose
   * catalogue has the event (3.0+), block jobs ran silently through their states before.
   */
  #jobStatus(id: string, status: string): void {
    if (!versionHasEvent("JOB_STATUS_CHANGE", this.host.core.profile.id)) return;
    this.host.emit("JOB_STATUS_CHANGE", { id, status });
  }

  /**
   * `block-stream {device, job-id?, speed?}`. The job goes `created`, `running`; when it is done,
   * `waiting`, `pending`, BLOCK_JOB_COMPLETED, `concluded`, `null` (auto-finalize, auto-dismiss).
   * A drive without a backing file has nothing to copy: 7.2.22 runs the whole sequence before
   * the reply, with `len` 0. With `backingBytes` the job copies for a while. The arguments are
   * already checked by the catalogue's validator for the release.
   */
  blockStream(args: BlockStreamArguments): void {
    const device = args.device;
    const b =
      this.blocks.get(device) ?? [...this.blocks.values()].find((x) => x.nodeName === device);
    if (b === undefined) {
      throw new QmpReplyError(
        "GenericError",
        `Cannot find device='${device}' nor node-name='${device}'`,
      );
    }
    const id = args["job-id"] ?? b.id;
    if (this.#jobs.has(id)) {
      throw new QmpReplyError("GenericError", `Job ID '${id}' already in use`);
    }
    const job: BlockJob = {
      device: id,
      type: "stream",
      len: b.backingBytes,
      offset: 0,
      speed: args.speed ?? 0,
      timer: undefined,
    };
    this.#jobs.set(id, job);
    this.#jobStatus(id, "created");
    this.#jobStatus(id, "running");
    const complete = () => {
      if (this.#disposed || this.host.core.hasExited) return;
      job.offset = job.len;
      this.#jobStatus(id, "waiting");
      this.#jobStatus(id, "pending");
      this.host.emit("BLOCK_JOB_COMPLETED", jobData(job));
      this.#jobStatus(id, "concluded");
      this.#jobStatus(id, "null");
      this.#jobs.delete(id);
    };
    if (job.len === 0) complete();
    else job.timer = this.host.clock.setTimer(complete, this.guestDelayMs * 10);
  }

  /** `block-job-cancel {device}`: `aborting`, BLOCK_JOB_CANCELLED, `concluded`, `null`. */
  blockJobCancel(device: string): void {
    const job = this.#jobs.get(device);
    if (job === undefined) {
      throw new QmpReplyError("DeviceNotActive", `Block job '${device}' not found`);
    }
    if (job.timer !== undefined) this.host.clock.clearTimer(job.timer as never);
    job.offset = Math.floor(job.len / 2);
    this.#jobStatus(device, "aborting");
    this.host.emit("BLOCK_JOB_CANCELLED", jobData(job));
    this.#jobStatus(device, "concluded");
    this.#jobStatus(device, "null");
    this.#jobs.delete(device);
  }

  /** `query-block-jobs`. */
  queryBlockJobs(): JsonValue[] {
    return [...this.#jobs.values()].map((j) => ({
      type: j.type,
      device: j.device,
      len: j.len,
      offset: j.offset,
      busy: false,
      paused: false,
      speed: j.speed,
      "io-status": "ok",
      ready: false,
      status: "running",
      "auto-finalize": true,
      "auto-dismiss": true,
    }));
  }
}

function jobData(j: BlockJob): JsonObject {
  return { type: j.type, device: j.device, len: j.len, offset: j.offset, speed: j.speed };
}

/** A virtio-net NIC's filter as 7.2.22 reports it before the guest programs it. */
/** Whether a NIC is a virtio-net one (the only model with rx-filter querying and events). */
function isVirtioNet(d: QdevDevice): boolean {
  return d.driver.startsWith("virtio-net");
}

function rxFilterInfo(name: string, index: number): JsonObject {
  const mac = `52:54:00:12:34:${(0x56 + index).toString(16).padStart(2, "0")}`;
  return {
    name,
    promiscuous: true,
    multicast: "normal",
    unicast: "normal",
    vlan: "all",
    "broadcast-allowed": false,
    "multicast-overflow": false,
    "unicast-overflow": false,
    "main-mac": mac,
    "vlan-table": Array.from({ length: 4096 }, (_, i) => 4095 - i),
    "unicast-table": [],
    "multicast-table": [],
  };
}
