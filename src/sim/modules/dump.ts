/**
 * Guest memory dumps: `dump-guest-memory` (STOP, DUMP_COMPLETED, RESUME; `detach`) and
 * `query-dump`.
 *
 * @module
 */
import type { JsonObject } from "../../base/json.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { DEFAULT_MEMORY_BYTES } from "./balloon.js";

/** The dump of one machine. */
export class Dump {
  #dump: { status: string; completed: number; total: number } | undefined;

  constructor(readonly host: ModuleHost) {}

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
    const memoryBytes = this.host.devices.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    const total = memoryBytes + 262_144; // RAM plus the ROM/option regions QEMU counts (7.2.22, -m 64)
    const resume = core.state === "running";
    if (resume) core.vmStop("save-vm");
    this.#dump = { status: "active", completed: 0, total };
    const finish = () => {
      if (this.host.gone) return;
      this.#dump = { status: "completed", completed: total, total };
      core.dumpInProgress = false;
      this.host.emit("DUMP_COMPLETED", { result: { ...this.#dump } });
      if (resume) core.vmStart();
    };
    if (args.detach === true) {
      core.dumpInProgress = true;
      this.host.clock.setTimer(finish, this.host.guestDelayMs);
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
}

/** The dump subsystem. */
export const dump: SimModule<Dump> = {
  name: "dump",
  create: (host) => new Dump(host),
  commands: {
    "dump-guest-memory": (host, a) => host.get(dump).dumpGuestMemory(a),
    "query-dump": (host) => host.get(dump).queryDump(),
  },
};
