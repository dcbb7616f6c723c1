/**
 * virtio-serial ports: VSERPORT_CHANGE when the guest opens or closes one (throttled per `id`).
 *
 * @module
 */
import { QmpReplyError } from "../../server/reply-error.js";
import type { ModuleHost, SimModule } from "../sim-module.js";

/** The virtio-serial ports of one machine: open or not, by id. */
export class SerialPorts {
  readonly ports = new Map<string, boolean>();

  constructor(readonly host: ModuleHost) {
    for (const id of host.devices.serialPorts ?? []) this.ports.set(id, false);
  }

  /** The guest opened or closed a virtio-serial port: VSERPORT_CHANGE (throttled per `id`). */
  guestSerialPort(id: string, open: boolean): void {
    this.host.core.assertGuestRunning("serial port change");
    if (!this.ports.has(id)) {
      throw new QmpReplyError("DeviceNotFound", `Device '${id}' not found`);
    }
    this.ports.set(id, open);
    this.host.emit("VSERPORT_CHANGE", { id, open });
  }
}

/** The virtio-serial subsystem. */
export const serialPorts: SimModule<SerialPorts> = {
  name: "serial-ports",
  create: (host) => new SerialPorts(host),
  guestActions: {
    "serial-port": (host, a) =>
      host.get(serialPorts).guestSerialPort(String(a.id), a.open === true),
  },
  injected: {
    VSERPORT_CHANGE: (host, data) => {
      if (typeof data.id === "string") host.get(serialPorts).ports.set(data.id, data.open === true);
      return false;
    },
  },
};
