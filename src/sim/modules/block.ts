/**
 * Block devices: drives with their trays and error actions, and block jobs.
 *
 * | commands | events |
 * |---|---|
 * | `eject`, `cont` (clears io-status) | BLOCK_IO_ERROR (+ STOP, `io-error` when the action is stop), DEVICE_TRAY_MOVED |
 * | `block-stream`, `block-job-cancel`, `query-block-jobs` | BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED, JOB_STATUS_CHANGE |
 *
 * Error texts and classes were checked against QEMU 7.2.22 (`eject` of an unknown device →
 * DeviceNotFound `Device 'x' not found`, …).
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../../base/json.js";
import type { BlockStreamArguments } from "../../generated/index.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { BlockErrorAction } from "../devices.js";
import { versionHasEvent, versionHasMember } from "../schema-info.js";
import type { ModuleHost, SimModule } from "../sim-module.js";

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

interface BlockJob {
  device: string;
  type: string;
  len: number;
  offset: number;
  speed: number;
  timer: unknown;
}

/** The I/O error a guest meets (see {@link BlockDevices.guestIoError}). */
export interface GuestIoErrorOptions {
  operation?: "read" | "write";
  nospace?: boolean;
  reason?: string;
}

/** The drives of one machine and their jobs. */
export class BlockDevices {
  readonly blocks = new Map<string, BlockDevice>();
  readonly #jobs = new Map<string, BlockJob>();

  constructor(readonly host: ModuleHost) {
    for (const b of host.devices.blockDevices ?? []) {
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
    host.core.beforeCont.push(() => {
      for (const b of this.blocks.values()) b.ioStatus = "ok"; // blk_iostatus_reset
    });
  }

  dispose(): void {
    for (const job of this.#jobs.values()) {
      if (job.timer !== undefined) this.host.clock.clearTimer(job.timer as never);
    }
  }

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
      this.host.guestWork(() => this.guestOpenTray(b.id));
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
  guestIoError(device: string, options: GuestIoErrorOptions = {}): void {
    this.host.core.assertGuestRunning("I/O error");
    const b = this.#block(device, undefined);
    const nospace = options.nospace ?? false;
    const operation = options.operation ?? "write";
    const configured = operation === "read" ? b.rerror : b.werror;
    // blk_get_error_action: enospc stops only on a full disk.
    const action = configured === "enospc" ? (nospace ? "stop" : "report") : configured;
    // Schema order: qom-path (9.2+) first, then device, node-name, operation, action, nospace,
    // reason (QEMU inserts members so; it decides the order of keys sharing a hash bucket).
    const data: JsonObject = versionHasMember("BLOCK_IO_ERROR", "qom-path", this.host.profile.id)
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

  // ------------------------------------------------------------------ block jobs

  /**
   * JOB_STATUS_CHANGE{id, status} (the job state machine, job.c); only in releases whose
   * catalogue has the event (3.0+), block jobs ran silently through their states before.
   */
  #jobStatus(id: string, status: string): void {
    if (!versionHasEvent("JOB_STATUS_CHANGE", this.host.profile.id)) return;
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
      if (this.host.gone) return;
      job.offset = job.len;
      this.#jobStatus(id, "waiting");
      this.#jobStatus(id, "pending");
      this.host.emit("BLOCK_JOB_COMPLETED", jobData(job));
      this.#jobStatus(id, "concluded");
      this.#jobStatus(id, "null");
      this.#jobs.delete(id);
    };
    if (job.len === 0) complete();
    else job.timer = this.host.clock.setTimer(complete, this.host.guestDelayMs * 10);
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

/** The block subsystem. */
export const block: SimModule<BlockDevices> = {
  name: "block",
  create: (host) => new BlockDevices(host),
  commands: {
    eject: (host, a) => host.get(block).eject(a),
    "block-stream": (host, a) => host.get(block).blockStream(a as unknown as BlockStreamArguments),
    "block-job-cancel": (host, a) => host.get(block).blockJobCancel(String(a.device)),
    "query-block-jobs": (host) => host.get(block).queryBlockJobs(),
  },
  guestActions: {
    "io-error": (host, a) => {
      const o: GuestIoErrorOptions = {};
      if (a.operation === "read" || a.operation === "write") o.operation = a.operation;
      if (a.nospace !== undefined) o.nospace = a.nospace === true;
      if (typeof a.reason === "string") o.reason = a.reason;
      host.get(block).guestIoError(String(a.device), o);
    },
    "tray-move": (host, a) => host.get(block).guestOpenTray(String(a.device), a.open === true),
  },
  injected: {
    BLOCK_IO_ERROR: (host, data) => {
      host.get(block).applyBlockIoError(data);
      return true;
    },
    DEVICE_TRAY_MOVED: (host, data) => {
      const b =
        typeof data.device === "string" ? host.get(block).blocks.get(data.device) : undefined;
      if (b !== undefined) b.trayOpen = data["tray-open"] === true;
      return false;
    },
  },
  dispose: (state) => state.dispose(),
};
