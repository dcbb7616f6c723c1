/**
 * Guest memory dumps: `dump-guest-memory` (STOP, DUMP_COMPLETED, RESUME; `detach`) and
 * `query-dump`.
 *
 * @module
 */
import type { JsonObject } from "../../base/json.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { dumpInitError, dumpRequestError, dumpSize, dumpWriteError } from "../dump-checks.js";
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
   * `dump-guest-memory {paging, protocol, detach?, begin?, length?, format?}`: refused as QEMU
   * refuses it (`dump-checks.ts`); a VM that runs is stopped for the dump and resumed
   * afterwards, also when `dump_init` gives up; DUMP_COMPLETED precedes the reply unless
   * `detach`. The size is the guest memory the filter covers.
   */
  dumpGuestMemory(args: JsonObject): void {
    const core = this.host.core;
    const refused = dumpRequestError(args, core.state, this.dumpInProgress, core.profile);
    if (refused !== undefined) throw new QmpReplyError("GenericError", refused);
    // `-machine none` has RAM only with `-m`; `pc` its RAM and BIOS.
    const ram =
      core.machine === "pc"
        ? (this.host.devices.memoryBytes ?? DEFAULT_MEMORY_BYTES)
        : (this.host.devices.memoryBytes ?? 0);
    const filter = args.begin !== undefined && args.length !== undefined;
    const total = dumpSize(
      core.machine,
      ram,
      filter ? Number(args.begin) : undefined,
      filter ? Number(args.length) : undefined,
    );
    const resume = core.state === "running";
    if (resume) core.vmStop("save-vm");
    const initError = dumpInitError(args, total, core.profile);
    if (initError !== undefined) {
      this.#dump = { status: "failed", completed: 0, total: 0 };
      if (initError.stderr !== undefined) this.host.stderr(initError.stderr);
      if (resume) core.vmStart();
      throw new QmpReplyError("GenericError", initError.desc);
    }
    const writeError = dumpWriteError(args);
    if (writeError !== undefined) {
      this.#dump = { status: "failed", completed: 0, total };
      this.host.emit("DUMP_COMPLETED", { result: { ...this.#dump }, error: writeError });
      if (resume) core.vmStart();
      throw new QmpReplyError("GenericError", writeError);
    }
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
