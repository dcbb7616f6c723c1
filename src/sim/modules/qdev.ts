/**
 * Guest devices that `device_del` unplugs: DEVICE_DELETED once the guest acknowledges (PCI) or
 * at once (USB devices, virtio-serial ports). Also the devices that block migration.
 *
 * Error texts checked against QEMU 7.2.22 (a second `device_del` → `Device net0 is already in
 * the process of unplug`; …).
 *
 * @module
 */
import type { JsonObject } from "../../base/json.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { QdevDeviceOptions } from "../devices.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { balloon } from "./balloon.js";

/** One guest device. */
export interface QdevDevice {
  id: string;
  driver: string;
  hotpluggable: boolean;
  bus: string;
  unplug: "guest" | "host";
  unplugPending: boolean;
  /** The guest's run time (ms) when `device_del` asked for it (see `deviceDel`). */
  unplugRequestedAtMs: number;
  unmigratable: string | undefined;
}

/** The guest devices of one machine: its NICs (`nics`, as virtio-net-pci by default), then the others. */
export class QdevDevices {
  readonly qdevs = new Map<string, QdevDevice>();

  constructor(readonly host: ModuleHost) {
    for (const nic of host.devices.nics ?? []) {
      this.#add(typeof nic === "string" ? { id: nic, driver: "virtio-net-pci" } : nic);
    }
    for (const d of host.devices.devices ?? []) this.#add(d);
    host.core.onReset.push(() => this.#ejectPendingOnReset());
  }

  #add(d: QdevDeviceOptions): void {
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
      unmigratable: d.unmigratable,
    });
  }

  /** The instance paths of the devices that block migration, in the order they were created. */
  migrationBlockers(): string[] {
    const paths: string[] = [];
    for (const d of this.qdevs.values())
      if (d.unmigratable !== undefined) paths.push(d.unmigratable);
    return paths;
  }

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
    d.unplugRequestedAtMs = this.host.virtualClockMs();
    if (d.unplug === "host") {
      // USB and virtio-serial ports unplug without the guest; 7.2.22 sends DEVICE_DELETED just
      // after the reply.
      this.host.clock.setTimer(() => {
        if (!this.host.gone) this.removeDevice(id);
      }, 0);
    } else {
      // The guest answers this request, if it still stands (it may have ejected meanwhile).
      this.host.guestWork(() => {
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
      if (this.host.gone) return;
      for (const d of pending) if (this.qdevs.get(d.id) === d) this.guestAckUnplug(d.id);
    }, 0);
  }

  /** Removes a device and emits DEVICE_DELETED (also the follow-up of an injected one). */
  removeDevice(id: string, path = `/machine/peripheral/${id}`): void {
    // An unplugged balloon takes its handler with it (hw/virtio/virtio-balloon.c unrealize):
    // `balloon` and `query-balloon` are DeviceNotActive again (seen on QEMU 7.2.22 and 10.0.2).
    if (this.qdevs.get(id)?.driver.startsWith("virtio-balloon")) this.host.get(balloon).unplugged();
    this.qdevs.delete(id);
    this.host.emit("DEVICE_DELETED", { device: id, path });
  }
}

/** The qdev subsystem: `device_del` and the guest's unplug acknowledgements. */
export const qdev: SimModule<QdevDevices> = {
  name: "qdev",
  create: (host) => new QdevDevices(host),
  commands: {
    device_del: (host, a) => host.get(qdev).deviceDel(String(a.id)),
  },
  guestActions: {
    "unplug-ack": (host, a) => {
      host.core.assertGuestRunning("unplug acknowledgement");
      host.get(qdev).guestAckUnplug(String(a.id));
    },
  },
  injected: {
    DEVICE_DELETED: (host, data: JsonObject) => {
      const devices = host.get(qdev);
      if (typeof data.device !== "string" || !devices.qdevs.has(data.device)) return false;
      devices.removeDevice(data.device, typeof data.path === "string" ? data.path : undefined);
      return true;
    },
  },
};
