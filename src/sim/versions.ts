/**
 * The QEMU versions the simulator can impersonate, and what differs between them (qemu-behaviour §7,
 * §1.9, §3, §6).
 *
 * A profile is data: a version, a `package` string and a build. Every behaviour that differs
 * between releases is a named, dated entry of {@link RELEASE_CHANGES}; whether a command, event,
 * member or enum value exists comes from the catalogue's `Since:`. The profiles offered:
 *
 * - **7.2.22** (default): Debian 12's QEMU, checked against the real binary on this machine. Carries the 7.2.9 backport of effd60c878, so events caused by a
 *   command come before its reply (§1.9).
 * - **7.2.0**: the same 7.2 machine before that backport: the reply comes before such events.
 * - **8.2.0**: 8.1's six `finish-migrate → …` pairs, `singlestep` still in `query-status`, reply first.
 * - **9.1.0**, **10.2.0**: the suspended-state rework (9.0), GUEST_PVSHUTDOWN (9.1), no `singlestep`,
 *   events before the reply.
 * - **9.2.0**: as 9.1, and BLOCK_IO_ERROR's `qom-path` (the catalogue's `Since: 9.2`); the
 *   migration keeps 7.2's course (the 10.0 entries of {@link RELEASE_CHANGES}). From QEMU's
 *   source, not checked against a binary.
 * - **10.0.2**: Debian's backport of QEMU 10.0 (bookworm-backports), checked against the real
 *   binary like 7.2.22 (`test/conformance/differential-10.test.ts`). It differs from 10.2 in
 *   nothing the switches here describe: the run-state table (85 pairs, the 9.0 rework), the
 *   throttle table (HV_BALLOON_STATUS_REPORT 8.2, BLOCK_IO_ERROR 9.2, chosen by the server from
 *   the version), the order of events and reply (effd60c878, 9.0), and the dispatcher's and
 *   parser's error texts are the same in both; what 10.1 and 10.2 add (GuestPanicInformation's
 *   `tdx`, new commands) is the catalogue's `Since:` business.
 * - **2.9.0**, the pre-4.0 profile, from the seeds (`qapi/event.json` of about 2.9): SHUTDOWN and
 *   RESET carry no data (`guest` arrived in 2.10, `reason` in 4.0); the greeting offers no
 *   capabilities (`oob` arrived in 3.0); there is no `-action`/`set-action` (6.0), so a panic
 *   follows the old fixed path: GUEST_PANICKED{pause} and a stop, then, unless `-no-shutdown`,
 *   GUEST_PANICKED{poweroff} and a shutdown (vl.c before 6.0).
 *
 * Each profile also names the build it imitates: the `if` symbols of the catalogue
 * (`CONFIG_…`, `HAVE_…`) that are on ({@link QemuProfile.config}). QEMU compiles out what a
 * condition leaves out, so `query-qmp-schema` does not list it and the argument checks refuse it.
 * Every profile takes Debian's build, checked on 7.2.22 and 10.0.2 ({@link DEBIAN_BUILD}): SPICE,
 * VNC, zstd, MPTCP, Linux; not the accelerator libraries QPL, UADK and QATzip (multifd
 * compression methods `qpl`, `uadk`, `qatzip`), which few builds have.
 *
 * Output is always QEMU's own byte format (the server writes it: key order, separators, `\r\n`,
 * escapes); that format did not change between 2.x and 10.2, so every profile is byte-exact.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import {
  compareQemuVersions,
  parseQemuVersion,
  type QemuVersion,
  versionAtLeast,
} from "../schema/qemu-version.js";
import {
  enumValuesIn,
  versionHasCommand,
  versionHasEvent,
  versionHasMember,
} from "./schema-info.js";

/**
 * A QEMU version as `query-version` reports it: the project's one version type. Its one
 * comparison, `versionAtLeast`, is schema/qemu-version.ts's; behaviours use
 * {@link RELEASE_CHANGES} through {@link QemuProfile.has} or {@link changedIn}.
 */
export type QemuVersionNumber = QemuVersion;
export { versionAtLeast };

/** A behaviour that changed in a QEMU release (see {@link RELEASE_CHANGES}). */
export interface ReleaseChange {
  /** The first release with the new behaviour, `X.Y` or `X.Y.Z`. */
  readonly since: string;
  /** Stable releases of older lines that took the change (`7.2.9`: 7.2.9 and later 7.2.x). */
  readonly backports?: readonly string[];
  /** Where upstream says so: the file (and function) or commit. */
  readonly upstream: string;
  /** What changed, old behaviour → new. */
  readonly what: string;
}

/**
 * Every behaviour the simulator models that differs between QEMU releases, by name, with the
 * release that changed it and where upstream says so, as QEMU's `hw_compat_X_Y[]` tables
 * (hw/core/machine.c) name each compatibility property. Whether a command, an event, a member
 * or an enum value exists is not here: the catalogue's `Since:` says that (`schema-info.ts`).
 * A release profile is then a version, a package string and a build; code asks
 * `profile.has("…")`, never for a version number.
 */
export const RELEASE_CHANGES = {
  "events-before-reply": {
    since: "9.0",
    backports: ["7.2.9"],
    upstream: "commit effd60c878 (monitor/qmp.c: the request's events are flushed first)",
    what: "events a command's request causes (RESET, POWERDOWN, SHUTDOWN, WAKEUP) come before its reply, not after it (§1.9)",
  },
  "runstate-finish-migrate-pairs": {
    since: "8.1",
    upstream: "softmmu/runstate.c runstate_transitions_def (v8.1)",
    what: "six more `finish-migrate → …` transitions (71 → 77 pairs)",
  },
  "suspended-is-live": {
    since: "9.0",
    upstream: "system/runstate.c runstate_is_live, system/cpus.c vm_was_suspended (v9.0)",
    what: "`suspended` is a live state: stop and cont act on it, a stop keeps vm_was_suspended, eight more transitions (85 pairs) (§3.4)",
  },
  "pc-rtc-in-south-bridge": {
    since: "8.2",
    upstream: "hw/isa/piix.c (the PIIX3 south bridge owns the RTC as its `rtc` child)",
    what: "RTC_CHANGE's `qom-path` on `-machine pc`: `/machine/unattached/device[9]` (7.2.22) → `/machine/unattached/device[3]/rtc` (10.0.2); 8.2 by inference from the south-bridge rework",
  },
  "migrate-pause-names-postcopy-recover": {
    since: "8.2",
    upstream: "migration/migration.c qmp_migrate_pause (v8.2)",
    what: "migrate-pause's refusal names the postcopy-recover state too",
  },
  "migrate-channels-checks-reworded": {
    since: "9.0",
    upstream:
      "migration/migration.c qmp_migrate, qmp_migrate_incoming (v9.0; 8.2's texts from commit 074dbce5fcce)",
    what: '`uri` and `channels`: one sentence for both-or-neither ("need either …"), an empty list counting as none',
  },
  "migrate-channels-main-entry": {
    since: "10.0",
    upstream:
      "migration/migration.c qmp_migrate, qmp_migrate_incoming (v10.0, with the `cpr` channel type)",
    what: "`channels` must hold one `main` entry (and may hold a `cpr` one) instead of exactly one entry",
  },
  "multifd-compression-levels-applied": {
    since: "9.0",
    upstream:
      "migration/options.c migrate_params_test_apply, migrate_params_apply (fixed March 2024)",
    what: "`multifd-zlib-level` and `multifd-zstd-level` are checked and kept; before, silently ignored",
  },
  "migration-device-status": {
    since: "10.0",
    upstream: "commit 48814111366b (migration/migration.c migration_completion)",
    what: "the switch-over always passes through the `device` status, not only after a pre-switchover pause",
  },
  "migration-yank-reason-at-switchover": {
    since: "10.0",
    upstream:
      "migration/migration.c migration_completion (observed on 10.0.2; 7.2.22 gives no reason)",
    what: "a migration yanked during its last pass fails with `Unable to write to socket: Broken pipe`, not without a reason",
  },
  "migration-restores-stopped-state": {
    since: "10.0",
    upstream:
      "migration/migration.c migration_iteration_finish (observed on 10.0.2: `prelaunch`; 7.2.22: `postmigrate`)",
    what: "a cancelled or failed switch-over of a VM that did not run puts it back in its state, not in `postmigrate`",
  },
  "incoming-listening-setup-status": {
    since: "10.0",
    upstream: "migration/migration.c fill_destination_migration_info (observed on 10.0.2)",
    what: "a listening destination's query-migrate reports `status: setup` beside `socket-address`",
  },
  "migrate-uri-checked-first": {
    since: "10.0",
    upstream: "migration/migration.c qmp_migrate → migrate_uri_parse (observed on 10.0.2)",
    what: "the URI is parsed before anything starts (socket_parse of `tcp:`/`unix:`/`vsock:`/`fd:`, `file:`'s offset, an unknown protocol: `unknown migration protocol: …`), with no MIGRATION event",
  },
  "migration-file-uri": {
    since: "10.0",
    upstream:
      "migration/file.c (observed on 10.0.2, refused as unknown by 7.2.22; the release between that added it is not checked)",
    what: "`migrate` takes a `file:` URI",
  },
  "migration-start-failure-texts": {
    since: "10.0",
    upstream:
      "migration/socket.c, migration/fd.c, migration/exec.c start functions (observed on 7.2.22 and 10.0.2)",
    what: "a destination `migrate` cannot open fails with 10.0's texts (and on stderr) rather than 7.2's",
  },
  "zero-blocks-deprecated": {
    since: "10.0",
    upstream: "migration/options.c migrate_caps_check (observed on 10.0.2)",
    what: "setting capabilities while `zero-blocks` is on warns on stderr that it is deprecated",
  },
  "postcopy-multifd-refused": {
    since: "10.0",
    upstream:
      "migration/options.c migrate_caps_check (observed on 10.0.2; 7.2.22 accepts the pair)",
    what: "the capabilities `postcopy-ram` and `multifd` together are refused",
  },
  "dump-checks-reworded": {
    since: "10.0",
    upstream: "dump/dump.c qmp_dump_guest_memory, dump_init (observed on 7.2.22 and 10.0.2)",
    what: "dump-guest-memory's refusals reworded: `Could not create` a `file:` (was `open`), `parameter 'protocol' must start with …`, `parameter 'length' expects a non-zero size` (7.2 also printed a GLib assertion)",
  },
  "multifd-xbzrle-refused": {
    since: "10.0",
    upstream: "migration/options.c migrate_caps_check (observed on 10.0.2)",
    what: "the capabilities `multifd` and `xbzrle` together are refused",
  },
  "block-node-active": {
    since: "10.0",
    upstream:
      "block/qapi.c bdrv_block_device_info, qapi/block-core.json BlockDeviceInfo (v10.0: `active`)",
    what: "every block node's info (`query-named-block-nodes`, `query-block`'s `inserted`) says `active: true` (10.0.2 does, 7.2.22 does not)",
  },
  "file-node-format-specific": {
    since: "8.0",
    upstream: "block/file-posix.c raw_get_specific_info (ImageInfoSpecificFile)",
    what: "a `file` node's image info has `format-specific: {type: file, data: {}}` (10.0.2 does, 7.2.22 does not; 8.0 by inference)",
  },
  "smp-modules": {
    since: "9.1",
    upstream: "hw/core/machine-smp.c machine_parse_smp_config (v9.1: the `modules` level)",
    what: "`-smp` refusals name `modules (1)` in the topology product (10.0.2 does, 7.2.22 does not)",
  },
} as const satisfies Record<string, ReleaseChange>;

/** The name of a {@link RELEASE_CHANGES} entry. */
export type ReleaseChangeName = keyof typeof RELEASE_CHANGES;

/** Whether release `version` has the behaviour `change` introduced (or a backport of it). */
export function changedIn(version: QemuVersionNumber, change: ReleaseChangeName): boolean {
  const entry: ReleaseChange = RELEASE_CHANGES[change];
  const v = parseQemuVersion(version);
  if (compareQemuVersions(v, parseQemuVersion(entry.since)) >= 0) return true;
  return (entry.backports ?? []).some((b) => {
    const backport = parseQemuVersion(b);
    return (
      v.major === backport.major &&
      v.minor === backport.minor &&
      compareQemuVersions(v, backport) >= 0
    );
  });
}

/** A named QEMU version and the switches the simulator derives from it. */
export interface QemuProfile {
  /** `major.minor.micro`, e.g. `7.2.22`. */
  readonly id: string;
  readonly version: QemuVersionNumber;
  /** `query-version`'s `package` by default (QEMU_PKGVERSION). */
  readonly package: string;
  /** Greeting capabilities: the release's `QMPCapability` values (`oob`). */
  readonly capabilities: readonly string[];
  /** Events a command's request causes precede its reply (`events-before-reply`, §1.9). */
  readonly eventsBeforeReply: boolean;
  /** SHUTDOWN/RESET data: as the catalogue's members (`guest` 2.10, `reason` 4.0, §6). */
  readonly shutdownData: "none" | "guest" | "guest-reason";
  /** `query-status` has `singlestep` (the catalogue: removed in 9.0, §3.3). */
  readonly statusSingleStep: boolean;
  /** The 9.0 suspended rework (`suspended-is-live`, §3.4). */
  readonly suspendedIsLive: boolean;
  /** `-action`, `set-action` and the panic action knob (the catalogue's `set-action`, 6.0). */
  readonly actionKnobs: boolean;
  /** `panic=exit-failure` (the catalogue's PanicAction value, 7.1). */
  readonly panicExitFailure: boolean;
  /** pvpanic shutdown and GUEST_PVSHUTDOWN (the catalogue's event, 9.1). */
  readonly pvShutdown: boolean;
  /** GUEST_CRASHLOADED (the catalogue's event, 5.0). */
  readonly crashLoaded: boolean;
  /**
   * Where `-machine pc` keeps its RTC in the QOM tree (RTC_CHANGE's `qom-path`). Observed:
   * `/machine/unattached/device[9]` on 7.2.22, `/machine/unattached/device[3]/rtc` on 10.0.2
   * (`pc-rtc-in-south-bridge`).
   */
  readonly pcRtcQomPath: string;
  /** The `if` symbols the imitated build has on (see {@link BUILD_SYMBOLS}). */
  readonly config: ReadonlySet<string>;
  /** Whether this release has the behaviour of {@link RELEASE_CHANGES} entry `change`. */
  has(change: ReleaseChangeName): boolean;
}

/**
 * Every `if` symbol the catalogue uses, so that each build says yes or no to each: a symbol
 * missing here is an error the tests catch (`test/sim/versions.test.ts`).
 */
export const BUILD_SYMBOLS: readonly string[] = [
  "CONFIG_LINUX",
  "CONFIG_SPICE",
  "CONFIG_VNC",
  "CONFIG_ZSTD",
  "HAVE_IPPROTO_MPTCP",
  "CONFIG_QPL",
  "CONFIG_UADK",
  "CONFIG_QATZIP",
];

/**
 * Debian's QEMU builds (12's 7.2.22, the 10.0.2 backport): the symbols that are on, as their
 * `query-qmp-schema` shows (SPICE and VNC events, `zstd`, `mptcp`, `abstract`/`tight`; none of
 * `qpl`, `uadk`, `qatzip`).
 */
export const DEBIAN_BUILD: ReadonlySet<string> = new Set([
  "CONFIG_LINUX",
  "CONFIG_SPICE",
  "CONFIG_VNC",
  "CONFIG_ZSTD",
  "HAVE_IPPROTO_MPTCP",
]);

/**
 * A profile: the version, the package string and the build are data; every switch comes from
 * {@link RELEASE_CHANGES} or from the catalogue's `Since:`.
 */
function profile(id: string, pkg: string, config: ReadonlySet<string> = DEBIAN_BUILD): QemuProfile {
  const version = parseQemuVersion(id);
  const changes = new Set(
    (Object.keys(RELEASE_CHANGES) as ReleaseChangeName[]).filter((c) => changedIn(version, c)),
  );
  return {
    id,
    version,
    package: pkg,
    capabilities: enumValuesIn("QMPCapability", id) ?? [],
    eventsBeforeReply: changes.has("events-before-reply"),
    shutdownData: versionHasMember("SHUTDOWN", "reason", id)
      ? "guest-reason"
      : versionHasMember("SHUTDOWN", "guest", id)
        ? "guest"
        : "none",
    statusSingleStep: versionHasMember("StatusInfo", "singlestep", id) === true,
    suspendedIsLive: changes.has("suspended-is-live"),
    actionKnobs: versionHasCommand("set-action", id),
    panicExitFailure: enumValuesIn("PanicAction", id)?.includes("exit-failure") ?? false,
    pvShutdown: versionHasEvent("GUEST_PVSHUTDOWN", id),
    crashLoaded: versionHasEvent("GUEST_CRASHLOADED", id),
    pcRtcQomPath: changes.has("pc-rtc-in-south-bridge")
      ? "/machine/unattached/device[3]/rtc"
      : "/machine/unattached/device[9]",
    config,
    has: (change) => changes.has(change),
  };
}

/** Every profile, by id. */
export const QEMU_PROFILES: ReadonlyMap<string, QemuProfile> = new Map(
  [
    profile("7.2.22", "Debian 1:7.2+dfsg-7+deb12u18+b3"),
    profile("7.2.0", ""),
    profile("8.2.0", ""),
    profile("9.1.0", ""),
    profile("9.2.0", ""),
    profile("10.0.2", "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"),
    profile("10.2.0", ""),
    profile("2.9.0", ""),
  ].map((p) => [p.id, p]),
);

/** The default profile: the QEMU Debian 12 ships. */
export const DEFAULT_QEMU_VERSION = "7.2.22";

/** An unknown `--qemu-version`. */
export class UnknownQemuVersionError extends QmpError {
  override name = "UnknownQemuVersionError";
  constructor(
    readonly requested: string,
    readonly known: readonly string[],
  ) {
    super(`unknown QEMU version '${requested}': known versions are ${known.join(", ")}`);
  }
}

/**
 * The profile for `id`. A `major.minor` id means `major.minor.0` (`10.2` is `10.2.0`, `7.2` is
 * `7.2.0`), or, where there is no `.0` profile, the release's newest micro (`10.0` is `10.0.2`);
 * anything unknown throws {@link UnknownQemuVersionError} listing the known ones.
 */
export function qemuProfile(id: string = DEFAULT_QEMU_VERSION): QemuProfile {
  const found = QEMU_PROFILES.get(id) ?? QEMU_PROFILES.get(`${id}.0`) ?? newestMicro(id);
  if (found === undefined) throw new UnknownQemuVersionError(id, [...QEMU_PROFILES.keys()]);
  return found;
}

/** The profile of release `major.minor` (a two-part id) with the highest micro. */
function newestMicro(id: string): QemuProfile | undefined {
  if (!/^\d+\.\d+$/.test(id)) return undefined;
  let best: QemuProfile | undefined;
  for (const p of QEMU_PROFILES.values()) {
    if (`${p.version.major}.${p.version.minor}` !== id) continue;
    if (best === undefined || p.version.micro > best.version.micro) best = p;
  }
  return best;
}
