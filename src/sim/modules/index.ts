/**
 * Every subsystem module of the simulated machine, in registration order. Adding a subsystem is
 * one line here (see `../sim-module.ts` and `../README.md`).
 *
 * @module
 */
import type { SimModule } from "../sim-module.js";
import { balloon } from "./balloon.js";
import { block } from "./block.js";
import { chardevs } from "./chardevs.js";
import { domain } from "./domain.js";
import { dump } from "./dump.js";
import { migration } from "./migration.js";
import { nics } from "./nics.js";
import { qdev } from "./qdev.js";
import { rtc } from "./rtc.js";
import { runControl } from "./run-control.js";
import { serialPorts } from "./serial-ports.js";
import { watchdog } from "./watchdog.js";

export {
  balloon,
  block,
  chardevs,
  domain,
  dump,
  migration,
  nics,
  qdev,
  rtc,
  runControl,
  serialPorts,
  watchdog,
};

/** The modules every simulated machine is built from. */
export const SIM_MODULES: readonly SimModule<unknown>[] = [
  runControl,
  watchdog,
  block,
  qdev,
  nics,
  balloon,
  serialPorts,
  rtc,
  migration,
  dump,
  chardevs,
  domain,
] as readonly SimModule<unknown>[];
