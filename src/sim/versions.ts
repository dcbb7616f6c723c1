/**
 * The QEMU versions the simulator can impersonate, and what differs between them (reference §7,
 * §1.9, §3, §6).
 *
 * Every behaviour switch is derived from the version number, so a profile is little more than a
 * version and a `package` string. The profiles offered:
 *
 * - **7.2.22** (default): Debian 12's QEMU, checked against the real binary on this machine. Carries the 7.2.9 backport of effd60c878, so events caused by a
 *   command come before its reply (§1.9).
 * - **7.2.0**: the same 7.2 machine before that backport: the reply comes before such events.
 * - **8.2.0**: 8.1's six `finish-migrate → …` pairs, `singlestep` still in `query-status`, reply first.
 * - **9.1.0**, **10.2.0**: the suspended-state rework (9.0), GUEST_PVSHUTDOWN (9.1), no `singlestep`,
 *   events before the reply.
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
import { type QemuVersionNumber, versionAtLeast } from "./run-state.js";

/** A named QEMU version and the switches the simulator derives from it. */
export interface QemuProfile {
  /** `major.minor.micro`, e.g. `7.2.22`. */
  readonly id: string;
  readonly version: QemuVersionNumber;
  /** `query-version`'s `package` by default (QEMU_PKGVERSION). */
  readonly package: string;
  /** Greeting capabilities (`oob` from 3.0). */
  readonly capabilities: readonly string[];
  /** Events a command's request causes (RESET, POWERDOWN, SHUTDOWN, WAKEUP) precede its reply (§1.9). */
  readonly eventsBeforeReply: boolean;
  /** SHUTDOWN/RESET data: none before 2.10, `{guest}` before 4.0, `{guest, reason}` after (§6). */
  readonly shutdownData: "none" | "guest" | "guest-reason";
  /** `query-status` has `singlestep` (up to 8.2, §3.3). */
  readonly statusSingleStep: boolean;
  /** 9.0 suspended rework: suspended is live; stop/cont from suspended; vm_was_suspended (§3.4). */
  readonly suspendedIsLive: boolean;
  /** `-action`, `set-action` and the panic action knob (6.0). */
  readonly actionKnobs: boolean;
  /** `panic=exit-failure` (7.1). */
  readonly panicExitFailure: boolean;
  /** pvpanic shutdown and GUEST_PVSHUTDOWN (9.1). */
  readonly pvShutdown: boolean;
  /** GUEST_CRASHLOADED (5.0). */
  readonly crashLoaded: boolean;
  /**
   * Where `-machine pc` keeps its RTC in the QOM tree (RTC_CHANGE's `qom-path`). Observed:
   * `/machine/unattached/device[9]` on 7.2.22, `/machine/unattached/device[3]/rtc` on 10.0.2,
   * where the RTC is the `rtc` child of the PIIX3 south bridge (hw/isa/piix.c; the move came
   * with the 8.x south-bridge rework, so the 8.2+ profiles take the 10.0 path, by inference).
   */
  readonly pcRtcQomPath: string;
  /** The `if` symbols the imitated build has on (see {@link BUILD_SYMBOLS}). */
  readonly config: ReadonlySet<string>;
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

function profile(id: string, pkg: string, eventsBeforeReply: boolean): QemuProfile {
  const [major = 0, minor = 0, micro = 0] = id.split(".").map(Number);
  const version = { major, minor, micro };
  const at = (a: number, b: number, c = 0) => versionAtLeast(version, a, b, c);
  return {
    id,
    version,
    package: pkg,
    capabilities: at(3, 0) ? ["oob"] : [],
    eventsBeforeReply,
    shutdownData: at(4, 0) ? "guest-reason" : at(2, 10) ? "guest" : "none",
    statusSingleStep: !at(9, 0),
    suspendedIsLive: at(9, 0),
    actionKnobs: at(6, 0),
    panicExitFailure: at(7, 1),
    pvShutdown: at(9, 1),
    crashLoaded: at(5, 0),
    pcRtcQomPath: at(8, 2) ? "/machine/unattached/device[3]/rtc" : "/machine/unattached/device[9]",
    config: DEBIAN_BUILD,
  };
}

/** Every profile, by id. */
export const QEMU_PROFILES: ReadonlyMap<string, QemuProfile> = new Map(
  [
    profile("7.2.22", "Debian 1:7.2+dfsg-7+deb12u18+b3", true),
    profile("7.2.0", "", false),
    profile("8.2.0", "", false),
    profile("9.1.0", "", true),
    profile("10.0.2", "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1", true),
    profile("10.2.0", "", true),
    profile("2.9.0", "", false),
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
