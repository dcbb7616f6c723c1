/**
 * `qmpkit sim` with the drop-in options (`qemu-dropin.ts`), and `qmpkit-qemu`, the binary that
 * software which runs `qemu-system-x86_64` can run instead:
 *
 * ```
 * QEMU=qmpkit-qemu my-test-harness          # a harness that takes the QEMU binary's name
 * ln -s "$(command -v qmpkit-qemu)" ~/bin/qemu-system-x86_64   # or put it first in PATH
 * ```
 *
 * On top of `runSim` (the simulator's own command line) this adds: monitors on `-chardev`
 * sockets, inherited descriptors and sockets to connect out to; `-pidfile`; `-daemonize` (the
 * process re-runs itself detached and the parent returns once every monitor listens, as QEMU's
 * parent does); `-version`; and extra options for software that builds the QEMU command line
 * itself: `QMPKIT_SIM_ARGS` (e.g. `--qemu-version 10.2.0`) and the file `QMPKIT_SIM_CONFIG`
 * names, `/etc/qmpkit/sim-args` by default (for launchers that clear the environment); and the
 * program's name: `qmpkit-qemu-7.2.22` / `qmpkit-qemu-10.0.2` (a symlink) is that release with
 * the real binary's schema, one emulator path per release, as libvirt needs (qemu-behaviour §13).
 * `-chardev pty` gets a real pty; an inherited monitor socket is named by its path.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fstatSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { basename, resolve } from "node:path";
import {
  DEFAULT_QEMU_VERSION,
  qemuProfile,
  recordedVersions,
  type SimulatedMachine,
} from "../sim/index.js";
import { openStream } from "../wire/index.js";
import { type CliIo, isEntryPoint, processIo } from "./io.js";
import { DROP_IN_OPTIONS, hasDropInMonitors, resolveDropIn } from "./qemu-dropin.js";
import { runSim } from "./sim-command.js";

/** Set in the environment of the detached child of `-daemonize`. */
const DAEMON_CHILD_ENV = "QMPKIT_DAEMONIZED";

const simExamples = `
Examples:
  $ qmpkit sim -qmp unix:/tmp/vm.qmp,server=on,wait=off -S
  $ qmpkit sim -machine pc -no-shutdown -action panic=pause -qmp tcp:127.0.0.1:4444,server=on,wait=off
  $ qmpkit sim --qemu-version 10.2.0 --guest-script boot.jsonl -qmp unix:/tmp/vm.qmp,server=on,wait=off
  $ qmpkit sim -chardev socket,id=mon0,path=/tmp/vm.qmp,server=on,wait=off \\
        -mon chardev=mon0,mode=control -pidfile /tmp/vm.pid -daemonize
  $ qmpkit-qemu …      the same, as a stand-in binary for qemu-system-x86_64
                       (QMPKIT_SIM_ARGS adds options, e.g. "--qemu-version 10.2.0")
`;

/** Where `qmpkit-qemu` reads extra options when `QMPKIT_SIM_CONFIG` does not name a file. */
export const DEFAULT_SIM_CONFIG = "/etc/qmpkit/sim-args";

/**
 * Extra options, before the command line's: the file `QMPKIT_SIM_CONFIG` names (default
 * {@link DEFAULT_SIM_CONFIG}, optional), then `QMPKIT_SIM_ARGS`. The file is for launchers that
 * clear the environment (libvirt runs its emulator so): options separated by white space,
 * `#` to the end of a line a comment, e.g. `--guest-acpi-shutdown 2000`. No quoting: option
 * values there have no spaces.
 */
function extraArgs(env: CliIo["env"]): string[] {
  const words = (text: string) => text.split(/\s+/).filter((s) => s !== "");
  const file = env.QMPKIT_SIM_CONFIG ?? DEFAULT_SIM_CONFIG;
  let fromFile: string[] = [];
  try {
    fromFile = words(readFileSync(file, "utf8").replace(/#.*$/gm, ""));
  } catch (error) {
    // The default file is optional; a file named on purpose must be there.
    if (env.QMPKIT_SIM_CONFIG !== undefined) {
      throw new Error(`QMPKIT_SIM_CONFIG: cannot read ${file}: ${(error as Error).message}`);
    }
  }
  return [...fromFile, ...words(env.QMPKIT_SIM_ARGS ?? "")];
}

/** The `--qemu-version` asked for: the last one given, as later options override earlier ones. */
function versionOf(argv: readonly string[]): string {
  for (let i = argv.length - 1; i >= 0; i--) {
    const a = argv[i]!;
    if (a.startsWith("--qemu-version=")) return a.slice("--qemu-version=".length);
    if (a === "--qemu-version" || a === "-qemu-version") return argv[i + 1] ?? DEFAULT_QEMU_VERSION;
  }
  return DEFAULT_QEMU_VERSION;
}

/**
 * The release a program name asks for: `qmpkit-qemu-10.0.2` (or `…-10.0`, `…-7.2`; a symlink
 * or a copy of the wrapper) impersonates that release, so that a launcher which clears the
 * environment (libvirt) can hold one emulator path per release. Undefined for other names.
 */
export function versionFromProgramName(program: string | undefined): string | undefined {
  const m = /^qmpkit-qemu-(\d+\.\d+(?:\.\d+)?)(?:\.js)?$/.exec(basename(program ?? ""));
  return m?.[1];
}

/**
 * What a versioned program name means: that release, and, for a release with a recorded
 * capability profile (7.2.22, 10.0.2), the real binary's `query-qmp-schema` and
 * `query-commands` (`--advertise recorded`), so that a capability probe (libvirt's) computes
 * what it computes for the real binary.
 */
function namedArgs(version: string | undefined): string[] {
  if (version === undefined) return [];
  let recorded = false;
  try {
    recorded = recordedVersions().includes(qemuProfile(version).id);
  } catch {
    // An unknown release: --qemu-version reports it with the list.
  }
  return ["--qemu-version", version, ...(recorded ? ["--advertise", "recorded"] : [])];
}

/** Options of {@link runSimDropIn}. */
export interface SimDropInOptions {
  /** The program's name (`argv[1]` of `qmpkit-qemu`): see {@link versionFromProgramName}. */
  program?: string | undefined;
}

/**
 * Runs the simulator with QEMU's command line, drop-in options included; resolves with the exit
 * status (the simulated QEMU's, 1 for a bad command line, 0 for the parent of `-daemonize`).
 * Options come from the config file, `QMPKIT_SIM_ARGS`, the program's name, then the command
 * line; a later option wins.
 */
export async function runSimDropIn(
  argvIn: readonly string[],
  io: CliIo,
  options: SimDropInOptions = {},
): Promise<number> {
  let argv: string[];
  const named = versionFromProgramName(options.program);
  try {
    argv = [...extraArgs(io.env), ...namedArgs(named), ...argvIn];
  } catch (e) {
    io.stderr.write(`qmpkit sim: ${(e as Error).message}\n`);
    return 1;
  }
  if (argv.includes("-version") || argv.includes("--version")) {
    try {
      const v = qemuProfile(versionOf(argv)).version;
      io.stdout.write(
        `QEMU emulator version ${v.major}.${v.minor}.${v.micro} (qmpkit simulator)\n`,
      );
      return 0;
    } catch (e) {
      io.stderr.write(`qmpkit sim: ${(e as Error).message}\n`);
      return 1;
    }
  }
  if (argv.includes("-h") || argv.includes("--help") || argv.includes("-help")) {
    const status = await runSim(argv, io, { extraOptions: DROP_IN_OPTIONS });
    io.stdout.write(simExamples);
    return status;
  }
  const daemonize = argv.includes("-daemonize") || argv.includes("--daemonize");
  if (daemonize && io.env[DAEMON_CHILD_ENV] !== "1") return await daemonParent(io);

  const listeners: Server[] = [];
  const ptys: ChildProcess[] = [];
  let pidfile: string | undefined;
  try {
    return await runSim(argv, io, {
      extraOptions: DROP_IN_OPTIONS,
      hasOwnMonitors: hasDropInMonitors,
      beforeListen: async (line) => {
        for (const c of line.domain.chardevs) {
          if (c.backend !== "pty") continue;
          const pty = await openPty();
          ptys.push(pty.process);
          c.runtimePath = pty.path;
          // QEMU says so on stderr (libvirt's domain log shows the line).
          io.stderr.write(`char device redirected to ${pty.path} (label ${c.id})\n`);
        }
      },
      onReady: async (vm: SimulatedMachine, line) => {
        const settings = resolveDropIn(line);
        for (const m of settings.fdMonitors) {
          // A named chardev: query-yank lists it by its id, and yank cuts it.
          const monitor = vm.addChardevMonitor(m.id, { pretty: m.pretty });
          if (m.server) {
            const server = createServer((socket) => monitor.accept(socket));
            await new Promise<void>((ok, fail) => {
              server.once("error", fail);
              server.listen({ fd: m.fd }, () => ok());
            });
            listeners.push(server);
            // query-chardev names an inherited socket by its own address, as QEMU does.
            const address = unixSocketPathOfFd(m.fd);
            const config = line.domain.chardevs.find((c) => c.id === m.id);
            if (config !== undefined && address !== undefined)
              config.runtimePath = `unix:${address}`;
          } else {
            monitor.accept(new Socket({ fd: m.fd, readable: true, writable: true }));
          }
        }
        for (const m of settings.connectMonitors) {
          vm.addChardevMonitor(m.id, { pretty: m.pretty }).accept(
            await openStream(m.target, { timeoutMs: 10_000 }),
          );
        }
        if (settings.pidfile !== undefined) {
          pidfile = resolve(io.cwd, settings.pidfile);
          // Written whole or not at all: a harness polling for the file never reads it empty.
          const partial = `${pidfile}.${process.pid}.tmp`;
          writeFileSync(partial, `${process.pid}\n`);
          renameSync(partial, pidfile);
        }
        if (settings.daemonize && process.send) {
          // The parent returns now; nobody reads our stderr any more.
          process.stderr.on("error", () => {});
          process.send("ready");
          process.disconnect?.();
        }
      },
    });
  } finally {
    for (const l of listeners) l.close();
    for (const p of ptys) p.kill();
    if (pidfile !== undefined) rmSync(pidfile, { force: true });
  }
}

/**
 * The path a unix socket descriptor is bound to (QEMU asks getsockname; Node cannot, so the
 * socket's inode is looked up in /proc/net/unix). Undefined when not found.
 */
function unixSocketPathOfFd(fd: number): string | undefined {
  try {
    const inode = String(fstatSync(fd).ino);
    for (const row of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols[6] === inode && cols[7] !== undefined) return cols[7];
    }
  } catch {
    // Not Linux, or the descriptor is gone: query-chardev then names no path.
  }
  return undefined;
}

/**
 * A pseudo-terminal for a `-chardev pty`: its slave is a real `/dev/pts/N` that a console
 * client can open, held open by util-linux `script` (Node cannot allocate a pty itself). The
 * helper ends when the simulator does (its stdin closes).
 */
async function openPty(): Promise<{ path: string; process: ChildProcess }> {
  const child = spawn("script", ["-q", "-c", "tty; exec sleep infinity", "/dev/null"], {
    stdio: ["pipe", "pipe", "ignore"],
  });
  const path = await new Promise<string>((ok, fail) => {
    let text = "";
    child.once("error", (e) => fail(new Error(`-chardev pty: cannot run script(1): ${e.message}`)));
    child.once("exit", () => fail(new Error("-chardev pty: script(1) ended before giving a tty")));
    child.stdout?.setEncoding("utf8").on("data", (s: string) => {
      text += s;
      const line = /^(\/dev\/\S+)\r?\n/.exec(text);
      if (line !== null) ok(line[1]!);
    });
  });
  child.removeAllListeners("exit");
  child.stdout?.removeAllListeners("data");
  child.stdout?.resume();
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return { path, process: child };
}

/** The parent of `-daemonize`: re-runs this process detached, returns once it is ready. */
async function daemonParent(io: CliIo): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    cwd: io.cwd,
    env: { ...process.env, ...io.env, [DAEMON_CHILD_ENV]: "1" },
    detached: true,
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  const outcome = await new Promise<{ ready: boolean; status: number }>((done) => {
    child.once("message", (m) => {
      if (m === "ready") done({ ready: true, status: 0 });
    });
    child.once("exit", (code) => done({ ready: false, status: code ?? 1 }));
    child.once("error", (e) => {
      stderr += `qmpkit sim: -daemonize: ${e.message}\n`;
      done({ ready: false, status: 1 });
    });
  });
  if (stderr) io.stderr.write(stderr);
  if (outcome.ready) {
    child.stderr?.destroy();
    if (child.connected) child.disconnect();
    child.unref();
  }
  return outcome.status;
}

/** The `qmpkit-qemu` entry point: QEMU's command line in, the simulated QEMU's exit status out. */
export async function qemuMain(argv: readonly string[]): Promise<number> {
  const { io, dispose } = processIo();
  try {
    return await runSimDropIn(argv, io, { program: process.argv[1] });
  } finally {
    dispose();
  }
}

if (isEntryPoint(import.meta.url)) {
  process.exitCode = await qemuMain(process.argv.slice(2));
}
