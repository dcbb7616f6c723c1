/**
 * `qmpkit sim`: a simulated QEMU started from the command line with QEMU's own option spelling,
 * e.g. `qmpkit sim -machine none -display none -nodefaults -S -qmp unix:/tmp/vm.sock,server=on,wait=off`.
 * Resolves with the simulated exit status (0; 1 for `panic=exit-failure`, or for a bad command line).
 *
 * SIGINT/SIGTERM (the CLI's abort signal) act as QEMU's host signals: SHUTDOWN{guest: false,
 * reason: "host-signal"}, then exit 0, even with `-no-shutdown`.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import {
  type GuestScriptStep,
  parseGuestScript,
  parseQemuOptions,
  type ParseQemuOptionsOptions,
  qemuOptionsHelp,
  qemuProfile,
  type SimCommandLine,
  SimulatedMachine,
  type SimulatedMachineOptions,
} from "../sim/index.js";
import type { CliIo } from "./io.js";

/** What `runSim` needs of the process: stderr/stdout, the abort signal, the working directory. */
export type SimIo = Pick<CliIo, "stdout" | "stderr" | "signal" | "cwd">;

/** Options of {@link runSim}: more QEMU options (the CLI adds `-chardev`, `-mon`, `-pidfile`). */
export interface RunSimOptions extends ParseQemuOptionsOptions {
  /**
   * Called before the monitors listen (QEMU opens its chardevs, a pty say, before a monitor
   * serves anybody).
   */
  beforeListen?: ((line: SimCommandLine) => void | Promise<void>) | undefined;
  /** Called once the machine listens on every monitor (e.g. to write a pid file, daemonize). */
  onReady?: ((vm: SimulatedMachine, line: SimCommandLine) => void | Promise<void>) | undefined;
  /** Whether the caller serves monitors of its own in `onReady` (inherited descriptors). */
  hasOwnMonitors?: ((line: SimCommandLine) => boolean) | undefined;
}

const USAGE = `Usage: qmpkit sim [QEMU options]

A simulated QEMU that speaks QMP like qemu-system-x86_64 (7.2.22 by default).
Guest events can be driven with the x-sim-guest / x-sim-inject QMP commands
(absent with --strict) or a guest script (--guest-script FILE, JSON lines).

Options:
`;

/** Builds the machine options from a parsed command line. */
export function machineOptionsFrom(line: SimCommandLine): SimulatedMachineOptions {
  return {
    qemuVersion: line.qemuVersion,
    package: line.packageString,
    startPaused: line.startPaused,
    actions: line.actions,
    name: line.name,
    machine: line.machine,
    incoming: line.incoming,
    strict: line.strict,
    advertise: line.advertise,
    firmwareResets: line.firmwareResets,
    devices: {
      domain: line.domain,
      blockDevices: line.blockDevices,
      nics: line.nics,
      netdevs: line.netdevs,
      devices: line.devices,
      balloon: line.balloon,
      serialPorts: line.serialPorts,
      memoryBytes: line.memoryBytes,
      acpiShutdownMs: line.acpiShutdownMs,
      // The RTC's QOM path moved with the PC machine's composition (reference: versions.ts).
      rtcQomPath:
        line.machine === "pc"
          ? qemuProfile(line.qemuVersion).pcRtcQomPath
          : "/machine/unattached/device[0]",
    },
  };
}

/**
 * Runs `qmpkit sim ARGV…` until the simulated QEMU exits; resolves with its exit status.
 * Problems with the command line print `qmpkit sim: …` to stderr and resolve with 1, as QEMU
 * exits 1 on a bad option.
 */
export async function runSim(
  argv: readonly string[],
  io: SimIo,
  options: RunSimOptions = {},
): Promise<number> {
  const fail = (message: string): number => {
    io.stderr.write(`qmpkit sim: ${message}\n`);
    return 1;
  };
  if (argv.includes("-h") || argv.includes("--help") || argv.includes("-help")) {
    io.stdout.write(`${USAGE}${qemuOptionsHelp(options.extraOptions)}\n`);
    return 0;
  }
  let line: SimCommandLine;
  try {
    line = parseQemuOptions(argv, options);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (line.monitors.length === 0 && !options.hasOwnMonitors?.(line)) {
    return fail(
      "no -qmp monitor: add -qmp unix:PATH,server=on,wait=off (or tcp:HOST:PORT,server=on,wait=off)",
    );
  }
  if (line.actionOption) {
    try {
      if (!qemuProfile(line.qemuVersion).actionKnobs) {
        return fail(
          `-action: invalid option (QEMU ${qemuProfile(line.qemuVersion).id} has none: use -no-reboot, -no-shutdown, -watchdog-action)`,
        );
      }
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  let script: GuestScriptStep[] | undefined;
  if (line.guestScript !== undefined) {
    try {
      script = parseGuestScript(await readFile(line.guestScript, "utf8"), line.guestScript);
    } catch (e) {
      return fail(`--guest-script: ${(e as Error).message}`);
    }
  }
  let vm: SimulatedMachine;
  try {
    vm = new SimulatedMachine({
      ...machineOptionsFrom(line),
      onStderr: (text) => io.stderr.write(text),
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  try {
    await options.beforeListen?.(line);
    for (const monitor of line.monitors)
      await vm.listen(monitor.target, { pretty: monitor.pretty, chardev: monitor.chardev });
    await options.onReady?.(vm, line);
  } catch (e) {
    await vm.close();
    return fail((e as Error).message);
  }
  if (script !== undefined) vm.runGuestScript(script);
  const onAbort = () => {
    if (vm.exitStatus !== undefined) return;
    // Node does not tell who sent the signal, so QEMU's ^C form (no "from pid") is printed.
    const reason = String((io.signal.reason as Error | undefined)?.message ?? io.signal.reason);
    const signal = /SIGINT/.test(reason) ? 2 : /SIGHUP/.test(reason) ? 1 : 15;
    try {
      vm.hostSide.signal({ anonymous: true, signal });
    } catch {
      void vm.close();
    }
  };
  if (io.signal.aborted) onAbort();
  else io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const status = await vm.exited;
    return status ?? 1;
  } finally {
    io.signal.removeEventListener("abort", onAbort);
    await vm.close();
  }
}
