/**
 * Every command and event of QEMU 10.0, typed: `import type { Qemu10_0 } from "qmpkit/qemu/10.0"`,
 * then `QmpClient.connect<Qemu10_0>(…)`. The types are generated from the schema that Debian's
 * build of the release reports (`schema/releases/`), with QEMU's own type names.
 *
 * @module
 */
import type { QmpCommandMap, QmpEventMap } from "../generated/releases/qemu-10.0.js";

export * from "../generated/releases/qemu-10.0.js";

/** The typing of QEMU 10.0: its commands and events, and nothing else. */
export interface Qemu10_0 {
  readonly release: "10.0";
  readonly commands: QmpCommandMap;
  readonly events: QmpEventMap;
}
