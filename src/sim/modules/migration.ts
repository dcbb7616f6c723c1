/**
 * Migration as a subsystem of the machine: the commands, `migrate-incoming`, the follow-up of
 * an injected MIGRATION, and what a migration of this machine sends. The migration itself, its
 * state machine, parameters and capabilities, is `SimMigration` (`../migration.ts`).
 *
 * @module
 */
import { StateError } from "../../base/errors.js";
import type { JsonObject } from "../../base/json.js";
import type { QmpCommandMap } from "../../generated/index.js";
import { QmpReplyError } from "../../server/reply-error.js";
import { migrationTarget, SimMigration, type SimMigrationOptions } from "../migration.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { DEFAULT_MEMORY_BYTES } from "./balloon.js";
import { qdev } from "./qdev.js";

/** ROM that `-machine pc -nodefaults` migrates besides `-m` (7.2.22: 130 pages). */
const PC_FIRMWARE_BYTES = 130 * 4096;
/** Of that, pages that hold data (7.2.22: 49 normal pages from a fresh `-machine pc -S`). */
const PC_FIRMWARE_DATA_PAGES = 49;

/**
 * What a migration of this machine sends. `-machine none` has no RAM unless `-m` gives some;
 * `-machine pc` has `-m` (default 128 MiB) plus its firmware. A guest that has run uses a little
 * of its RAM (one page in 512 holds data); the rest are zero pages, as all of a fresh `-S`
 * machine's RAM is. The device state at the switch-over: 92 bytes for `pc`, 12 for `none`
 * (7.2.22, idle machines).
 */
function migrationRam(host: ModuleHost): SimMigrationOptions {
  const options = host.devices;
  const pc = host.core.machine === "pc";
  const memory = options.memoryBytes ?? (pc ? DEFAULT_MEMORY_BYTES : 0);
  const used = () => (host.guestRan ? Math.floor(memory / 4096 / 512) : 0);
  return {
    bandwidth: options.migrationBandwidth,
    failure: options.migrationFailure,
    blockers: () => host.get(qdev).migrationBlockers(),
    ramBytes: memory + (pc ? PC_FIRMWARE_BYTES : 0),
    normalPages: () => (pc ? PC_FIRMWARE_DATA_PAGES : 0) + used(),
    deviceStateBytes: pc ? 92 : memory > 0 ? 12 : 0,
  };
}

/** The incoming side's start, once (`-incoming URI` has started it already). */
const incomingStarted = new WeakSet<SimMigration>();

/**
 * `migrate-incoming {uri}`, as 7.2.22 answers: only with `-incoming` on the command line, once
 * (`-incoming URI` has already started it); MIGRATION setup (with the `events` capability)
 * even for a URI it then refuses.
 */
function migrateIncoming(host: ModuleHost, a: QmpCommandMap["migrate-incoming"]["args"]): void {
  const incoming = host.incoming;
  if (incoming === undefined || incoming === false) {
    throw new QmpReplyError("GenericError", "'-incoming' was not specified on the command line");
  }
  const m = host.get(migration);
  if (incoming !== "defer" || incomingStarted.has(m)) {
    throw new QmpReplyError("GenericError", "The incoming migration has already been started");
  }
  const uri = migrationTarget("migrate-incoming", a, host.profile.version);
  if (m.capability("events")) host.emit("MIGRATION", { status: "setup" });
  if (!/^(tcp|unix|exec|fd|rdma|vsock):/.test(uri)) {
    throw new QmpReplyError("GenericError", `unknown migration protocol: ${uri}`);
  }
  incomingStarted.add(m);
  m.listen(uri);
}

/** An incoming migration finished: `running` (RESUME) if autostart is set, else `paused`. */
export function incomingMigrationDone(host: ModuleHost): void {
  const core = host.core;
  core.assertAlive("incoming migration");
  if (!core.runState.is("inmigrate")) {
    throw new StateError(
      `incoming migration failed: the machine is in '${core.state}', not 'inmigrate'`,
      core.state,
      "inmigrate",
    );
  }
  host.get(migration).incomingStatus("completed");
  if (core.autostart) core.vmStart();
  else core.runState.set("paused");
}

/**
 * A command's arguments as the catalogue types them. Only for commands registered with the
 * catalogue's validator: the server has checked them.
 */
function args<K extends keyof QmpCommandMap>(a: JsonObject): QmpCommandMap[K]["args"] {
  return a as unknown as QmpCommandMap[K]["args"];
}

/** The migration subsystem. */
export const migration: SimModule<SimMigration> = {
  name: "migration",
  create: (host) => new SimMigration(host, migrationRam(host)),
  // The arguments of these reach the handlers checked by the catalogue's validators.
  commands: {
    "migrate-set-capabilities": (host, a) =>
      host.get(migration).setCapabilities(args<"migrate-set-capabilities">(a).capabilities),
    migrate: (host, a) => {
      const x = args<"migrate">(a);
      host.get(migration).migrate(migrationTarget("migrate", x, host.profile.version), {
        resume: x.resume,
        blk: x.blk,
        inc: x.inc,
        viaChannels: x.uri === undefined,
      });
    },
    "migrate-continue": (host, a) =>
      host.get(migration).continue(args<"migrate-continue">(a).state),
    migrate_cancel: (host) => host.get(migration).cancel(),
    "migrate-incoming": (host, a) => migrateIncoming(host, args<"migrate-incoming">(a)),
    "query-migrate": (host) => host.get(migration).query(),
    "query-migrate-capabilities": (host) => host.get(migration).queryCapabilities(),
    "migrate-set-parameters": (host, a) => host.get(migration).setParameters(a),
    "query-migrate-parameters": (host) => host.get(migration).queryParameters(),
    "migrate-pause": (host) => {
      // Only a post-copy migration can pause, and the simulator never enters post-copy
      // (7.2 qmp_migrate_pause; from 8.2 postcopy-recover also qualifies, and says so).
      const states = host.profile.has("migrate-pause-names-postcopy-recover")
        ? "postcopy-active or postcopy-recover state"
        : "postcopy-active state";
      throw new QmpReplyError(
        "GenericError",
        `migrate-pause is currently only supported during ${states}`,
      );
    },
    "migrate-recover": () => {
      // qmp_migrate_recover: only on a destination whose post-copy stream broke.
      throw new QmpReplyError(
        "GenericError",
        "Migrate recover can only be run when postcopy is paused.",
      );
    },
  },
  injected: {
    MIGRATION: (host, data) => {
      const m = host.get(migration);
      // On a source with a running migration, `failed` fails it (the event then follows the
      // `events` capability, as the migration's own events do; no error-desc).
      if (data.status === "failed" && m.running) {
        m.failNow();
        return true;
      }
      // On a destination, `completed` ends the incoming migration: the VM then starts
      // (RESUME) if autostart is set, else it stays paused (process_incoming_migration_bh).
      host.emit("MIGRATION", data);
      if (host.core.runState.is("inmigrate") && typeof data.status === "string") {
        if (data.status === "completed") incomingMigrationDone(host);
        else if (data.status !== "setup") m.incomingStatus(data.status);
      }
      return true;
    },
  },
  dispose: (state) => state.dispose(),
};
