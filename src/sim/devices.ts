/**
 * The devices a simulated machine has, as its options describe them (`-drive`, `-device`,
 * `-netdev`, `-m` on a QEMU command line). Each subsystem module (`modules/`) makes its own
 * state from them.
 *
 * @module
 */
import type { DomainConfig } from "./domain-config.js";
/** How a simulated migration fails (see {@link SimDevicesOptions.migrationFailure}). */
export interface MigrationFailure {
  /**
   * `connect`: the destination cannot be reached; the migration fails in `setup`, before any
   * pass (7.2.22: `tcp:` to a closed port). `transfer`: the stream breaks once memory is being
   * sent, after the first pass and `active` (7.2.22: an `exec:` command that exits).
   */
  phase: "connect" | "transfer";
  /** `error-desc`, e.g. `Unable to write to command: Broken pipe`. */
  desc: string;
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
  /**
   * The domain's configuration from its command line (chardevs, block nodes, peripherals,
   * vCPUs; `domain-config.ts`), which `query-chardev`, `qom-list`, `query-block` … answer from.
   */
  domain?: DomainConfig | undefined;
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
  /**
   * The guest's answer to the ACPI power button (`system_powerdown`, POWERDOWN): with a value,
   * it shuts down (SHUTDOWN `guest-shutdown`, as `shutdown -h` on an OS that handles ACPI) this
   * long after the button, counted in its run time; without one it ignores the button, as a
   * guest with no OS, or a hung one, does. Default: it ignores it.
   */
  acpiShutdownMs?: number | undefined;
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
