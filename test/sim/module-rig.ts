/** A machine core with its subsystem modules, without monitors: for the modules' own tests. */
import type { JsonObject } from "../../src/base/json.js";
import type { SimDevicesOptions } from "../../src/sim/devices.js";
import { MachineCore, type MachineCoreOptions } from "../../src/sim/machine-core.js";
import {
  balloon,
  block,
  dump,
  migration,
  nics,
  qdev,
  rtc,
  serialPorts,
} from "../../src/sim/modules/index.js";
import { ModuleHost } from "../../src/sim/sim-module.js";
import { qemuProfile } from "../../src/sim/versions.js";
import { FakeClock } from "./fake-clock.js";

/** The core, the modules' host, a fake clock and the events (`NAME {data}`) of a machine. */
export function moduleRig(
  devices: SimDevicesOptions,
  options: MachineCoreOptions & { version?: string } = {},
) {
  const log: string[] = [];
  const stderr: string[] = [];
  const emit = (name: string, data?: JsonObject) =>
    log.push(data === undefined ? name : `${name} ${JSON.stringify(data)}`);
  const core = new MachineCore(
    qemuProfile(options.version ?? "7.2.22"),
    { emit, exit: (s) => log.push(`exit ${s}`), stderr: () => {} },
    options,
  );
  const clock = new FakeClock();
  const host = new ModuleHost(core, clock, { emit, stderr: (t) => stderr.push(t) }, { devices });
  /** Each module's state, made on first use as the machine makes it. */
  const dev = {
    get block() {
      return host.get(block);
    },
    get qdev() {
      return host.get(qdev);
    },
    get nics() {
      return host.get(nics);
    },
    get balloon() {
      return host.get(balloon);
    },
    get serialPorts() {
      return host.get(serialPorts);
    },
    get rtc() {
      return host.get(rtc);
    },
    get dump() {
      return host.get(dump);
    },
    get migration() {
      return host.get(migration);
    },
  };
  return { core, host, dev, clock, log, stderr };
}
