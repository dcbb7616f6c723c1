/**
 * The real-time clock: RTC_CHANGE when the guest sets it (throttled by the server).
 *
 * @module
 */
import { versionHasMember } from "../schema-info.js";
import type { ModuleHost, SimModule } from "../sim-module.js";

/** The RTC of one machine. */
export class Rtc {
  /** Its QOM path (RTC_CHANGE's `qom-path`): the devices' or the profile's `-machine pc` one. */
  readonly qomPath: string;

  constructor(readonly host: ModuleHost) {
    this.qomPath = host.devices.rtcQomPath ?? host.profile.pcRtcQomPath;
  }

  /** The guest set its RTC: RTC_CHANGE, with `qom-path` where the release has it. */
  guestRtcChange(offset: number): void {
    this.host.core.assertGuestRunning("rtc-change");
    // qom-path: since 7.0 (commit 2beb1e5f9aca, "rtc: Have event RTC_CHANGE identify the RTC by
    // QOM path", merged for 7.0), as the catalogue says.
    const withPath = versionHasMember("RTC_CHANGE", "qom-path", this.host.profile.id) === true;
    this.host.emit("RTC_CHANGE", withPath ? { offset, "qom-path": this.qomPath } : { offset });
  }
}

/** The RTC subsystem. */
export const rtc: SimModule<Rtc> = {
  name: "rtc",
  create: (host) => new Rtc(host),
  guestActions: {
    "rtc-change": (host, a) => host.get(rtc).guestRtcChange(Number(a.offset ?? 0)),
  },
};
