/**
 * Test support: the differential scenario runner. A scenario is a QEMU command line, a tiny guest
 * (or none), host actions and "until" conditions; it runs the same way against a real
 * `qemu-system-x86_64` (the guest really runs, under TCG) and against the simulator (the guest's
 * action is replayed through `SimulatedMachine.guestAction`, the TypeScript side of
 * `x-sim-guest`), and each run is recorded for {@link normaliseTranscript}.
 *
 * Both runs start paused (`-S`), negotiate, and let the scenario `cont` the machine, so that no
 * event is emitted before the client listens (§3: a RESUME before negotiation is lost). After
 * the last step the runner waits until nothing arrives for 300 ms; then, if the machine is still
 * there, it records a final `query-status`; if it ended, it records the exit status.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonObject } from "../../src/base/json.js";
import { machineOptionsFrom } from "../../src/cli/sim-command.js";
import { parseQemuOptions, SimulatedMachine } from "../../src/sim/index.js";
import type { GuestImages, GuestName } from "./guests.js";
import { eventNameOf, isReplyLine, QmpRecorder, type WireEntry } from "./qmp-recorder.js";
import { type QemuInstallation, SYSTEM_QEMU, startQemu } from "./real-qemu.js";
import type { RunRecord } from "./transcript.js";

/** One step of a scenario. */
export type ScenarioStep =
  /** Send a command (raw text) and wait for its reply or the end of the stream. */
  | { readonly do: "command"; readonly text: string }
  /**
   * The guest acts here. On real QEMU this is the tiny guest's own doing (nothing to do); on the
   * simulator the runner performs `action` (an `x-sim-guest` action). With `storm`, the simulator
   * repeats it every 5 ms and just before each later command, whenever the machine is running,
   * until the scenario ends, as the storm guests do.
   */
  | {
      readonly do: "guest";
      readonly action: string;
      readonly args?: JsonObject | undefined;
      readonly storm?: boolean | undefined;
    }
  /** Wait until `count` (default 1) events named `event` have arrived in all. */
  | { readonly do: "until-event"; readonly event: string; readonly count?: number | undefined }
  /** Wait for the end of the stream. */
  | { readonly do: "until-eof" }
  /** Wait this long. */
  | { readonly do: "sleep"; readonly ms: number }
  /** The host sends a termination signal to the process (the test process is the sender). */
  | { readonly do: "signal"; readonly signal: "SIGTERM" | "SIGINT" | "SIGHUP" };

/** A differential scenario. */
export interface Scenario {
  /** What it shows, e.g. "guest panic, panic=pause". */
  readonly name: string;
  /** The rows of the reference it covers, e.g. "§4.3 guest panic / panic=pause". */
  readonly reference: string;
  /** `-machine`. Default `pc`. */
  readonly machine?: "pc" | "none" | undefined;
  /** More QEMU options (`-no-shutdown`, `-action …`, `-device pvpanic`…). */
  readonly options?: readonly string[] | undefined;
  /** The tiny guest (only on `pc`). Default `idle`. */
  readonly guest?: GuestName | undefined;
  /**
   * `tiny` (default on `pc`): the guest is the firmware (`-bios`), and the simulator runs with
   * `--firmware-resets 0`. `seabios`: QEMU's own SeaBIOS and no guest; the simulator keeps its
   * default SeaBIOS model (two guest resets after each reset or wake-up, §4.3 note).
   */
  readonly firmware?: "tiny" | "seabios" | undefined;
  /**
   * A disk whose every read fails (EIO from a blkdebug rule): `-drive if=none,id=DRIVE,
   * format=raw,node-name=NODE,file=blkdebug:…` and `-device ide-hd,drive=DRIVE,id=DEVICE`
   * (on ide.1, the secondary channel). The real run gets the files; the simulator the same line.
   */
  readonly failingDisk?:
    | {
        readonly drive: string;
        readonly node: string;
        readonly device: string;
        /** `rerror=` of the drive. Default QEMU's (`report`). */
        readonly rerror?: "report" | "ignore" | "stop" | undefined;
      }
    | undefined;
  readonly steps: readonly ScenarioStep[];
  /** The expected normalised transcript, after the greeting and negotiation. */
  readonly expect: readonly string[];
  /** Where real QEMU is not deterministic: what is compared instead, and why. */
  readonly note?: string | undefined;
}

/** Options of the runners. */
export interface RunOptions {
  /** Time limit of each wait. Default 10 000 ms. */
  timeoutMs?: number | undefined;
  /** `package` for the simulator's greeting (so that it can match the real QEMU beside it). */
  package?: string | undefined;
  /**
   * How the simulator's guest acts: through the TypeScript API (`guestAction`, the default) or
   * from outside, through `x-sim-guest` on a second QMP monitor (whose own transcript is not
   * compared: it sees the same events, and the replies to `x-sim-guest`).
   */
  guestVia?: "api" | "x-sim-guest" | undefined;
  /** The real QEMU to run (`runOnRealQemu`). Default the system's ({@link SYSTEM_QEMU}). */
  qemu?: QemuInstallation | undefined;
  /** Run the simulator as `qmpkit sim --strict` (only QEMU's commands). Default false. */
  strict?: boolean | undefined;
  /** The simulator's `--qemu-version` (`runOnSimulator`). Default its own default, 7.2.22. */
  qemuVersion?: string | undefined;
}

/** How long "nothing more arrives" must last before a scenario is considered finished. */
const QUIET_MS = 300;

/** The options every run gets (the issue's machine line); `-S` and `-qmp` are added by the runners. */
export function baseOptions(scenario: Scenario): string[] {
  return ["-machine", scenario.machine ?? "pc", "-accel", "tcg", "-display", "none", "-nodefaults"];
}

/** The options of a scenario's failing disk (`file` is the value for `-drive file=`). */
function failingDiskOptions(scenario: Scenario, file: string): string[] {
  const disk = scenario.failingDisk;
  if (disk === undefined) return [];
  return [
    "-drive",
    `if=none,id=${disk.drive},format=raw,node-name=${disk.node},${disk.rerror === undefined ? "" : `rerror=${disk.rerror},`}file=${file}`,
    "-device",
    `ide-hd,drive=${disk.drive},id=${disk.device}`,
  ];
}

/** The greeting and negotiation, as they appear at the start of every normalised transcript. */
export function handshakeLines(
  packageString: string,
  version: { readonly major: number; readonly minor: number; readonly micro: number } = {
    major: 7,
    minor: 2,
    micro: 22,
  },
): string[] {
  const { major, minor, micro } = version;
  return [
    `<<< {"QMP": {"version": {"qemu": {"micro": ${micro}, "minor": ${minor}, "major": ${major}}, "package": ${JSON.stringify(packageString)}}, "capabilities": ["oob"]}}`,
    '>>> {"execute": "qmp_capabilities"}',
    '<<< {"return": {}}',
  ];
}

/** The `package` of a real QEMU (default the system's), from `--version`, or `undefined`. */
export async function realQemuPackage(
  qemu: QemuInstallation = SYSTEM_QEMU,
): Promise<string | undefined> {
  const { execFileSync } = await import("node:child_process");
  try {
    const text = execFileSync(qemu.binary, ["--version"], { encoding: "utf8" });
    return /^QEMU emulator version [^\s]+ \((.*)\)$/m.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

interface StepHooks {
  /** Called before each command is sent. */
  beforeCommand(): void | Promise<void>;
  guest(step: Extract<ScenarioStep, { do: "guest" }>): void | Promise<void>;
  signal(name: "SIGTERM" | "SIGINT" | "SIGHUP"): void;
}

function countEvents(entries: readonly WireEntry[], name: string): number {
  let n = 0;
  for (const e of entries) if (e.kind === "received" && eventNameOf(e.text) === name) n++;
  return n;
}

async function runSteps(
  peer: QmpRecorder,
  scenario: Scenario,
  hooks: StepHooks,
  timeoutMs: number,
): Promise<void> {
  await peer.waitFor("the greeting", (e) => e.length > 0, { timeoutMs });
  await peer.command('{"execute": "qmp_capabilities"}', { timeoutMs });
  for (const step of scenario.steps) {
    switch (step.do) {
      case "command":
        await hooks.beforeCommand();
        await peer.command(step.text, { timeoutMs });
        break;
      case "guest":
        await hooks.guest(step);
        break;
      case "until-event": {
        const count = step.count ?? 1;
        await peer.waitFor(
          `${count} ${step.event} event(s)`,
          (entries) => countEvents(entries, step.event) >= count,
          { timeoutMs },
        );
        break;
      }
      case "until-eof":
        await peer.waitFor("the end of the stream", () => peer.isEnded, { timeoutMs });
        break;
      case "sleep":
        await new Promise((r) => setTimeout(r, step.ms));
        break;
      case "signal":
        hooks.signal(step.signal);
        break;
    }
  }
  await peer.waitQuiet(QUIET_MS);
  if (!peer.isEnded) await peer.command('{"execute": "query-status"}', { timeoutMs });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} failed: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs a scenario against the real QEMU, booting its tiny guest from `images`. */
export async function runOnRealQemu(
  scenario: Scenario,
  images: GuestImages,
  options: RunOptions = {},
): Promise<RunRecord> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const machine = scenario.machine ?? "pc";
  const args = ["-accel", "tcg"];
  if (machine === "pc" && scenario.firmware !== "seabios") {
    args.push("-bios", await images.image(scenario.guest ?? "idle"));
  }
  args.push(...(scenario.options ?? []));
  if (scenario.failingDisk !== undefined) {
    args.push(...failingDiskOptions(scenario, images.failingDisk()));
  }
  const qemu = await startQemu({ machine, paused: true, args, qemu: options.qemu });
  let peer: QmpRecorder | undefined;
  try {
    peer = await QmpRecorder.connect(qemu.socketPath, { timeoutMs });
    await runSteps(
      peer,
      scenario,
      { beforeCommand: () => {}, guest: () => {}, signal: (name) => qemu.process.kill(name) },
      timeoutMs,
    );
    const exit = peer.isEnded
      ? await withTimeout(qemu.exited, timeoutMs, "waiting for QEMU to exit")
      : undefined;
    return { wire: [...peer.entries], exit, stderr: qemu.stderr() };
  } finally {
    peer?.close();
    await qemu.stop();
  }
}

/** Runs a scenario against the simulator, with the same command line (minus the guest). */
export async function runOnSimulator(
  scenario: Scenario,
  options: RunOptions = {},
): Promise<RunRecord> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const tinyFirmware = (scenario.machine ?? "pc") === "pc" && scenario.firmware !== "seabios";
  const line = parseQemuOptions([
    ...baseOptions(scenario),
    "-S",
    ...(tinyFirmware ? ["--firmware-resets", "0"] : []),
    ...(options.qemuVersion === undefined ? [] : ["--qemu-version", options.qemuVersion]),
    ...(options.strict === true ? ["--strict"] : []),
    ...(scenario.options ?? []),
    // The simulator reads no file: the path only has to be well formed.
    ...failingDiskOptions(
      scenario,
      "blkdebug:/nonexistent/failing-disk.blkdebug:/nonexistent/failing-disk.img",
    ),
  ]);
  let stderr = "";
  const vm = new SimulatedMachine({
    ...machineOptionsFrom(line),
    ...(options.package === undefined ? {} : { package: options.package }),
    onStderr: (text) => {
      stderr += text;
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-sim-"));
  const storms: NodeJS.Timeout[] = [];
  const stormFires: Array<() => Promise<void>> = [];
  let peer: QmpRecorder | undefined;
  let side: QmpRecorder | undefined;
  try {
    const socketPath = join(dir, "qmp.sock");
    await vm.listen(`unix:${socketPath}`);
    peer = await QmpRecorder.connect(socketPath, { timeoutMs });
    if (options.guestVia === "x-sim-guest") {
      const sidePath = join(dir, "guest.sock");
      await vm.listen(`unix:${sidePath}`);
      side = await QmpRecorder.connect(sidePath, { timeoutMs });
      await side.waitFor("the greeting", (e) => e.length > 0, { timeoutMs });
      await side.command('{"execute": "qmp_capabilities"}', { timeoutMs });
    }
    const via = side;
    /** Performs the guest action; through x-sim-guest, checks that it was accepted. */
    const act = async (step: Extract<ScenarioStep, { do: "guest" }>): Promise<void> => {
      if (via === undefined) {
        vm.guestAction(step.action, step.args ?? {});
        return;
      }
      const text = JSON.stringify({
        execute: "x-sim-guest",
        arguments: { action: step.action, ...step.args },
      });
      const before = via.received().filter(isReplyLine).length;
      await via.command(text, { timeoutMs });
      const reply = via.received().filter(isReplyLine)[before];
      if (reply !== '{"return": {}}\r\n') {
        throw new Error(`x-sim-guest failed: ${text} answered ${reply}`);
      }
    };
    await runSteps(
      peer,
      scenario,
      {
        guest: async (step) => {
          if (step.storm !== true) return act(step);
          // One action at a time; one the machine refuses because it stopped meanwhile is
          // what a storm guest meets too (its vCPUs stop), not an error.
          let chain = Promise.resolve();
          const fire = () => {
            chain = chain.then(async () => {
              if (vm.exitStatus !== undefined || vm.state !== "running") return;
              try {
                await act(step);
              } catch (error) {
                if (vm.exitStatus === undefined && vm.state === "running") throw error;
              }
            });
            return chain;
          };
          await fire();
          storms.push(setInterval(() => void fire().catch(() => {}), 5));
          stormFires.push(fire);
        },
        // A storm guest fires without pause, so on real QEMU it has always fired again by the
        // time a command arrives; the 5 ms interval alone could miss that.
        beforeCommand: async () => {
          for (const fire of stormFires) await fire();
        },
        // As QEMU reports it (qemu_kill_report): the signal, and this process as the sender.
        signal: (name) =>
          vm.hostSide.signal({
            signal: constants.signals[name],
            pid: process.pid,
            sender: process.execPath,
          }),
      },
      timeoutMs,
    );
    for (const s of storms) clearInterval(s);
    const exit = peer.isEnded
      ? await withTimeout(vm.exited, timeoutMs, "waiting for the simulator to exit")
      : undefined;
    return { wire: [...peer.entries], exit, stderr };
  } finally {
    for (const s of storms) clearInterval(s);
    peer?.close();
    side?.close();
    await vm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
