/**
 * Every command and event of QEMU 7.2, typed: `import type { Qemu7_2 } from "qmpkit/qemu/7.2"`,
 * then `QmpClient.connect<Qemu7_2>(…)`. The types are generated from the schema that Debian's
 * build of the release reports (`schema/releases/`), with QEMU's own type names.
 *
 * @module
 */
import type { QmpCommandMap, QmpEventMap } from "../generated/releases/qemu-7.2.js";

export * from "../generated/releases/qemu-7.2.js";

/** The typing of QEMU 7.2: its commands and events, and nothing else. */
export interface Qemu7_2 {
  readonly release: "7.2";
  readonly commands: QmpCommandMap;
  readonly events: QmpEventMap;
}
