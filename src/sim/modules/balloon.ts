/**
 * The virtio balloon: `balloon`, `query-balloon`, BALLOON_CHANGE when the guest driver reaches
 * the target. Without a balloon both commands are DeviceNotActive (QEMU 7.2.22).
 *
 * @module
 */
import type { JsonObject } from "../../base/json.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { ModuleHost, SimModule } from "../sim-module.js";

/** RAM in bytes when the devices do not say (`-m`'s default, 128 MiB). */
export const DEFAULT_MEMORY_BYTES = 128 * 1024 * 1024;

/** The balloon of one machine. */
export class Balloon {
  /** The size the guest last reported; undefined without a balloon device. */
  actual: number | undefined;
  readonly memoryBytes: number;

  constructor(readonly host: ModuleHost) {
    this.memoryBytes = host.devices.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    if (host.devices.balloon) this.actual = this.memoryBytes;
  }

  /** The balloon device was unplugged: no handler is left. */
  unplugged(): void {
    this.actual = undefined;
  }

  #require(): number {
    if (this.actual === undefined) {
      throw new QmpReplyError("DeviceNotActive", "No balloon device has been activated");
    }
    return this.actual;
  }

  /** `query-balloon`. */
  query(): JsonObject {
    return { actual: this.#require() };
  }

  /**
   * `balloon {value}`: the guest driver moves toward the target, then BALLOON_CHANGE. QEMU asks
   * the guest for whole 4 KiB pages, `num_pages` = (RAM − target) / 4096 rounded down, a target
   * above the RAM size asking for none (hw/virtio/virtio-balloon.c, virtio_balloon_to_target):
   * so a driver that follows reports RAM − num_pages × 4096, a target rounded up to a page.
   */
  balloon(value: number): void {
    this.#require();
    if (value <= 0) throw new QmpReplyError("GenericError", "Parameter 'target' expects a size");
    const pages = Math.floor((this.memoryBytes - Math.min(value, this.memoryBytes)) / 4096);
    this.host.guestWork(() => {
      // The balloon may have been unplugged meanwhile: then no driver is left to answer.
      if (this.actual !== undefined) this.guestBalloonChange(this.memoryBytes - pages * 4096);
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
    const before = this.#require();
    if (actual === before) return;
    this.actual = actual;
    this.host.emit("BALLOON_CHANGE", { actual });
  }
}

/** The balloon subsystem. */
export const balloon: SimModule<Balloon> = {
  name: "balloon",
  create: (host) => new Balloon(host),
  commands: {
    balloon: (host, a) => host.get(balloon).balloon(Number(a.value)),
    "query-balloon": (host) => host.get(balloon).query(),
  },
  guestActions: {
    "balloon-change": (host, a) => host.get(balloon).guestBalloonChange(Number(a.actual)),
  },
  injected: {
    BALLOON_CHANGE: (host, data) => {
      if (typeof data.actual === "number") host.get(balloon).actual = data.actual;
      return false;
    },
  },
};
