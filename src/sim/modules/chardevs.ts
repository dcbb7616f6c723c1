/**
 * Socket chardevs and yank (util/yank.c): `query-yank` lists the monitors' socket chardevs,
 * then the migration while one is under way; `yank` drops a chardev's client or breaks the
 * migration's socket.
 *
 * @module
 */
import type { Duplex } from "node:stream";
import type { JsonObject } from "../../base/json.js";
import type { QmpCommandMap } from "../../generated/index.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { migration } from "./migration.js";

/** A socket chardev and its connected streams. */
export interface Chardev {
  readonly id: string;
  readonly streams: Set<Duplex>;
}

/** The socket chardevs of one machine, in registration order. */
export class Chardevs {
  readonly list: Chardev[] = [];

  constructor(readonly host: ModuleHost) {}

  /** Registers a socket chardev (QEMU creates them at start-up, in command-line order). */
  add(id: string): Chardev {
    const chardev = { id, streams: new Set<Duplex>() };
    this.list.push(chardev);
    return chardev;
  }

  /**
   * `query-yank` (util/yank.c): the yank instances in registration order: the socket chardevs
   * of the monitors (QEMU creates the chardevs at start-up), then the migration while one is
   * under way (registered when `migrate` or `migrate-incoming` starts, gone at its end).
   */
  instances(): JsonObject[] {
    const out: JsonObject[] = this.list.map((c) => ({ type: "chardev", id: c.id }));
    if (this.host.get(migration).yankable) out.push({ type: "migration" });
    return out;
  }

  /**
   * `yank` (util/yank.c `qmp_yank`): every instance must exist, else DeviceNotFound and nothing
   * happens; then each is yanked. A chardev's connected client is dropped (shut down, no reply
   * if it asked itself; observed on 7.2.22), a migration over a socket breaks.
   */
  yank(instances: readonly { type: string; id?: string; "node-name"?: string }[]): void {
    const m = this.host.get(migration);
    const found = instances.map((i) => {
      if (i.type === "chardev") return this.list.find((c) => c.id === i.id);
      if (i.type === "migration") return m.yankable ? "migration" : undefined;
      return undefined; // block nodes: the simulator has no network block devices
    });
    if (found.some((f) => f === undefined)) {
      throw new QmpReplyError("DeviceNotFound", "Instance not found");
    }
    for (const f of found) {
      if (f === "migration") m.yank();
      else if (f !== undefined) {
        // A socket chardev has one client at a time: the oldest open connection is served.
        const [stream] = f.streams;
        stream?.destroy();
      }
    }
  }
}

/** The chardev and yank subsystem (both commands are allow-oob in the catalogue). */
export const chardevs: SimModule<Chardevs> = {
  name: "chardevs",
  create: (host) => new Chardevs(host),
  commands: {
    "query-yank": (host) => host.get(chardevs).instances(),
    yank: (host, a) =>
      host.get(chardevs).yank((a as unknown as QmpCommandMap["yank"]["args"]).instances),
  },
};
