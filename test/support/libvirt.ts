/**
 * Test support: a private libvirt 9.0 daemon (`libvirtd` in session mode) for one test file, the
 * emulator wrappers it launches (real QEMU or `qmpkit-qemu`), `virsh` against it, the `virsh
 * event --all --loop` stream, and the QMP transcript libvirt exchanged, read from its debug log.
 *
 * Why session mode (docs/libvirt.md "Isolation"): a privileged libvirtd (euid 0) keeps its state
 * in fixed places (/run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /etc/libvirt), so two
 * test files would share sockets, domain definitions and the capability cache. A session daemon
 * (`qemu:///session`) keeps all of it under XDG_CONFIG_HOME, XDG_RUNTIME_DIR and XDG_CACHE_HOME,
 * which we point into a fresh directory. It must not run as root (root always gets the
 * privileged driver), so as root the daemon runs as the dedicated system user
 * {@link LIBVIRT_TEST_USER} (`.ci/run` creates it); `virsh` stays root and connects with
 * `?socket=` to the private socket. QEMU then runs as that user too: no chown of images, no
 * cgroups, no /dev/kvm (mode 0600 root), so real QEMU runs under TCG on every machine, as the
 * simulator pretends to. `stdio_handler = "file"` keeps virtlogd out (a session daemon would
 * spawn its own, which would outlive the test).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { QemuInstallation } from "./real-qemu.js";
import { unixSocketListening } from "./wait-for-path.js";

/** The system user a root test process runs its session libvirtd as (`.ci/run` creates it). */
export const LIBVIRT_TEST_USER = "qmpkit-libvirt";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Whether libvirtd and virsh are installed. */
export function libvirtAvailable(): boolean {
  return (
    spawnSync("libvirtd", ["--version"], { stdio: "ignore", env: withSbin() }).status === 0 &&
    spawnSync("virsh", ["--version"], { stdio: "ignore" }).status === 0
  );
}

/** Who the daemon runs as: ourselves, or (as root) the test user; undefined if that user is missing. */
function daemonUser(): { uid: number; gid: number } | undefined {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? uid };
  const id = (flag: string) => spawnSync("id", [flag, LIBVIRT_TEST_USER], { encoding: "utf8" });
  const u = id("-u");
  const g = id("-g");
  if (u.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * Options for a test that needs real libvirt: `{ skip }` on a developer machine without it. In
 * CI the test runs anyway and fails on what is missing, as it must.
 */
export function libvirtTest(): { skip?: string } {
  let why: string | undefined;
  if (!libvirtAvailable()) {
    why =
      "libvirtd/virsh not found (apt-get install libvirt-daemon-driver-qemu libvirt-daemon libvirt-clients)";
  } else if (daemonUser() === undefined) {
    why = `running as root and the user ${LIBVIRT_TEST_USER} is missing (useradd --system --user-group ${LIBVIRT_TEST_USER}, as .ci/run does)`;
  }
  if (why === undefined || process.env.CI) return {};
  process.stderr.write(`\n*** libvirt tests SKIPPED: ${why} ***\n\n`);
  return { skip: why };
}

function withSbin(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? "/usr/bin:/bin"}` };
}

/** What `virsh` printed and how it ended. */
export interface VirshResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One `virsh event --all --loop` process and the lines it printed. */
export interface EventWatch {
  readonly lines: string[];
  /** Resolves once a line matches (checked against those seen so far, then new ones). */
  waitFor(match: RegExp | string, what?: string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/** An emulator for `<emulator>`: a wrapper script in the daemon's directory. */
export interface Emulator {
  readonly path: string;
  readonly label: string;
}

/** A running private libvirtd. */
export interface LibvirtDaemon {
  /** Its directory (configuration, runtime, cache, log, wrappers); removed by `stop`. */
  readonly dir: string;
  /** The URI `virsh -c` takes. */
  readonly uri: string;
  readonly logPath: string;
  /** `virsh -c URI ARGS…`; never throws on a non-zero exit. */
  virsh(...args: string[]): Promise<VirshResult>;
  /** Like {@link virsh}, but a non-zero exit throws with virsh's error and the daemon's errors. */
  virshOk(...args: string[]): Promise<string>;
  /**
   * Starts `virsh event --all --loop` and resolves once it receives events: it defines and
   * undefines a sentinel domain (on `emulator`) until the watch prints its `Undefined` line.
   */
  watchEvents(emulator: Emulator): Promise<EventWatch>;
  /** Writes `name` (a file in the daemon's directory readable by it) and returns its path. */
  writeFile(name: string, content: string | Buffer, mode?: number): string;
  /** A wrapper that runs real QEMU (env and -L for an unpacked tree; libvirt clears the environment). */
  realQemu(qemu: QemuInstallation, name: string): Emulator;
  /**
   * A wrapper that runs qmpkit-qemu from this checkout with `--qemu-version VERSION` and `extra`
   * options (e.g. `--strict`); a domain
   * named N gets the extra options {@link simArgs} set for it.
   */
  simQemu(
    version: string,
    name: string,
    extra?: readonly string[],
    /** Run the built `dist/` (`npm run build`) rather than the sources through tsx. */
    fromDist?: boolean,
  ): Emulator;
  /** Sets the extra qmpkit-qemu options of the domain `domain` (its `-name guest=…`). */
  simArgs(domain: string, args: readonly string[]): void;
  /** The pids of the running emulators, by domain name (from the daemon's pid files). */
  emulatorPids(): Map<string, number>;
  /** The debug log so far. */
  log(): string;
  /** The log's error lines since `offset` (its length in bytes at some earlier moment). */
  errorsSince(offset: number): string;
  /** Stops the daemon (SIGTERM, by pid) and starts it again on the same directories. */
  restart(): Promise<void>;
  /** Kills every emulator still running, stops the daemon and removes the directory. */
  stop(): Promise<void>;
}

/** By path: the daemon's environment has a PATH of its own. */
const SETPRIV = "/usr/bin/setpriv";

const LOG_FILTERS = "2:qemu.qemu_monitor 2:qemu.qemu_monitor_json 4:*";

/**
 * Starts a private session libvirtd and waits until its socket listens. As root it runs as
 * {@link LIBVIRT_TEST_USER}.
 */
export async function startLibvirtd(): Promise<LibvirtDaemon> {
  const user = daemonUser();
  if (user === undefined) {
    throw new Error(
      `libvirt tests run the session daemon as ${LIBVIRT_TEST_USER} when run as root: create it (useradd --system --user-group ${LIBVIRT_TEST_USER}), as .ci/run does`,
    );
  }
  if ((process.getuid?.() ?? 0) === 0) {
    // The daemon's user runs the emulator wrappers: node and this checkout must be readable by it.
    const probe = spawnSync(
      "setpriv",
      [
        `--reuid=${user.uid}`,
        `--regid=${user.gid}`,
        "--clear-groups",
        "--",
        "/bin/sh",
        "-c",
        'test -x "$1" && test -r "$2"',
        "sh",
        process.execPath,
        join(repoRoot, "src/cli/qemu-main.ts"),
      ],
      { stdio: "ignore" },
    );
    if (probe.status !== 0) {
      throw new Error(
        `${LIBVIRT_TEST_USER} cannot run ${process.execPath} or read ${repoRoot}: the libvirt tests need the checkout readable by that user (chmod o+rx on its parent directories)`,
      );
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-libvirt-"));
  // Reachable by the daemon's user (the test may be root): the directory and everything in it.
  chmodSync(dir, 0o755);
  const sub = (...p: string[]) => join(dir, ...p);
  for (const d of ["config/libvirt", "runtime", "cache", "bin", "sim", "images"]) {
    mkdirSync(sub(d), { recursive: true });
  }
  chmodSync(sub("runtime"), 0o700);
  const logPath = sub("libvirtd.log");
  const conf = sub("config/libvirt/libvirtd.conf");
  writeFileSync(conf, `log_filters="${LOG_FILTERS}"\nlog_outputs="1:file:${logPath}"\n`);
  // No virtlogd (a session daemon would spawn one that outlives us): QEMU's stderr goes to a file.
  writeFileSync(sub("config/libvirt/qemu.conf"), 'stdio_handler = "file"\n');
  const own = (path: string) => {
    chownSync(path, user.uid, user.gid);
    if (statSync(path).isDirectory()) for (const e of readdirSync(path)) own(join(path, e));
  };
  own(dir);

  const socket = sub("runtime/libvirt/libvirt-sock");
  const uri = `qemu:///session?socket=${socket}`;
  const env = {
    // A system's usual PATH: the emulators inherit it (qmpkit-qemu runs script(1) for a pty).
    // libvirtd probes the qemu-system-* it finds there at the first connection, a few seconds.
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: dir,
    XDG_CONFIG_HOME: sub("config"),
    XDG_RUNTIME_DIR: sub("runtime"),
    XDG_CACHE_HOME: sub("cache"),
    LC_ALL: "C",
  };
  const asRoot = (process.getuid?.() ?? 0) === 0;
  let daemon: ChildProcess | undefined;
  let daemonExit: Promise<void> = Promise.resolve();
  let daemonStderr = "";

  const start = async () => {
    const argv = ["libvirtd", "--config", conf];
    const [cmd, args] = asRoot
      ? [
          SETPRIV,
          [
            `--reuid=${user.uid}`,
            `--regid=${user.gid}`,
            "--clear-groups",
            "--",
            "/usr/sbin/libvirtd",
            ...argv.slice(1),
          ],
        ]
      : ["/usr/sbin/libvirtd", argv.slice(1)];
    daemonStderr = "";
    const child = spawn(cmd as string, args as string[], {
      cwd: dir,
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.setEncoding("utf8").on("data", (s: string) => {
      daemonStderr += s;
    });
    let gone = false;
    daemonExit = new Promise((resolve) => {
      child.once("exit", () => {
        gone = true;
        resolve();
      });
      child.once("error", (e) => {
        daemonStderr += `spawn: ${e.message}\n`;
        gone = true;
        resolve();
      });
    });
    daemon = child;
    const deadline = Date.now() + 60_000;
    while (!unixSocketListening(socket)) {
      if (gone || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(
          `libvirtd did not open ${socket}: ${cmd} ${args.join(" ")}\n${daemonStderr}\n${tail(readLog(), 30)}`,
        );
      }
      await sleep(20);
    }
  };
  const stopDaemon = async () => {
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill("SIGTERM");
      const killed = await Promise.race([
        daemonExit.then(() => false),
        sleep(30_000).then(() => true),
      ]);
      if (killed) {
        daemon.kill("SIGKILL");
        await daemonExit;
      }
    }
    daemon = undefined;
  };
  const readLog = () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : "");

  const runVirsh = (args: string[]): Promise<VirshResult> =>
    new Promise((resolve) => {
      execFile(
        "virsh",
        ["-q", "-c", uri, ...args],
        { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: "C" } },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
    });

  const watchers = new Set<EventWatch>();

  const self: LibvirtDaemon = {
    dir,
    uri,
    logPath,
    virsh: (...args) => runVirsh(args),
    async virshOk(...args) {
      const offset = Buffer.byteLength(readLog());
      const r = await runVirsh(args);
      if (r.code !== 0) {
        throw new Error(
          `virsh ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}\nlibvirtd's errors:\n${self.errorsSince(offset)}`,
        );
      }
      return r.stdout;
    },
    async watchEvents(emulator) {
      const child = spawn("virsh", ["-q", "-c", uri, "event", "--all", "--loop"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LC_ALL: "C" },
      });
      const lines: string[] = [];
      const waiters = new Set<() => void>();
      let buffer = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (s: string) => {
        buffer += s;
        let nl = buffer.indexOf("\n");
        while (nl >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line !== "") lines.push(line);
          nl = buffer.indexOf("\n");
        }
        for (const w of waiters) w();
      });
      child.stderr.setEncoding("utf8").on("data", (s: string) => {
        stderr += s;
      });
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      const watch: EventWatch = {
        lines,
        waitFor(match, what = String(match), timeoutMs = 60_000) {
          const test = (l: string) => (typeof match === "string" ? l === match : match.test(l));
          return new Promise((resolve, reject) => {
            const check = () => {
              const hit = lines.find(test);
              if (hit !== undefined) {
                waiters.delete(check);
                clearTimeout(timer);
                resolve(hit);
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              reject(
                new Error(
                  `no event line ${what} within ${timeoutMs} ms; seen:\n${lines.join("\n")}\n${stderr}`,
                ),
              );
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        async stop() {
          watchers.delete(watch);
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          await exited;
        },
      };
      watchers.add(watch);
      try {
        await sentinel(self, watch, emulator);
      } catch (e) {
        await watch.stop();
        throw e;
      }
      // The sentinel's lines are ours, not the scenario's.
      lines.splice(0, lines.length, ...lines.filter((l) => !l.includes(`'${SENTINEL}'`)));
      return watch;
    },
    writeFile(name, content, mode = 0o644) {
      const path = sub(name);
      writeFileSync(path, content, { mode });
      chmodSync(path, mode);
      chownSync(path, user.uid, user.gid);
      return path;
    },
    realQemu(qemu, name) {
      const env =
        qemu.moduleDir === undefined ? "" : `export QEMU_MODULE_DIR=${shq(qemu.moduleDir)}\n`;
      const dataDir = qemu.dataDir === undefined ? "" : ` -L ${shq(qemu.dataDir)}`;
      const path = self.writeFile(
        `bin/${name}`,
        `#!/bin/sh\n# ${qemu.label}, as libvirt's <emulator> (libvirt clears the environment).\n${env}exec ${shq(onPath(qemu.binary))}${dataDir} "$@"\n`,
        0o755,
      );
      return { path, label: qemu.label };
    },
    simQemu(version, name, extra = [], fromDist = false) {
      const tsx = fileURLToPath(import.meta.resolve("tsx"));
      const main = join(repoRoot, fromDist ? "bin/qmpkit-qemu.js" : "src/cli/qemu-main.ts");
      const runner = fromDist
        ? shq(process.execPath)
        : `${shq(process.execPath)} --import ${shq(tsx)}`;
      const simDir = sub("sim");
      // Never the machine's /etc/qmpkit/sim-args: an empty file when the domain has none.
      const none = self.writeFile("sim/none.args", "");
      const path = self.writeFile(
        `bin/${name}`,
        [
          "#!/bin/sh",
          "# qmpkit-qemu from this checkout, as libvirt's <emulator>. libvirt clears the",
          "# environment, so a domain's options come from QMPKIT_SIM_CONFIG: its own file",
          "# (-name guest=NAME,...) if there is one.",
          `cfg=${shq(none)}`,
          'for a in "$@"; do',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
          '  case "$a" in guest=*) n="${a#guest=}"; n="${n%%,*}";',
          `    [ -f ${shq(simDir)}/"$n.args" ] && cfg=${shq(simDir)}/"$n.args";;`,
          "  esac",
          "done",
          'export QMPKIT_SIM_CONFIG="$cfg"',
          `exec ${runner} ${shq(main)} --qemu-version ${version}${extra.map((a) => ` ${shq(a)}`).join("")} "$@"`,
          "",
        ].join("\n"),
        0o755,
      );
      return { path, label: `qmpkit-qemu ${version}` };
    },
    simArgs(domain, args) {
      self.writeFile(`sim/${domain}.args`, `${args.join("\n")}\n`);
    },
    emulatorPids: () => emulatorPids(sub("runtime/libvirt/qemu/run")),
    log: readLog,
    errorsSince(offset) {
      const text = readLogFrom(logPath, offset);
      const errors = text.split("\n").filter((l) => /: (error|warning) : /.test(l));
      return errors.join("\n") || "(none logged)";
    },
    async restart() {
      await stopDaemon();
      await start();
    },
    async stop() {
      for (const w of [...watchers]) await w.stop();
      // Domains outlive their daemon by design: destroy what runs, then kill what remains.
      if (daemon !== undefined) {
        const list = await runVirsh(["list", "--name"]);
        for (const name of list.stdout.split("\n").filter((s) => s.trim() !== "")) {
          await runVirsh(["destroy", name.trim()]);
        }
      }
      await stopDaemon();
      killEmulators(sub("runtime/libvirt/qemu/run"));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return self;
}

const SENTINEL = "qmpkit-event-sentinel";

/**
 * `virsh event` prints nothing until an event comes, and there is no telling when it has
 * registered its callbacks; an event it receives is the condition. A domain defined and
 * undefined makes two, whatever the emulator does (defining probes it, so a failed probe shows
 * here first, with the daemon's cause).
 */
async function sentinel(
  daemon: LibvirtDaemon,
  watch: EventWatch,
  emulator: Emulator,
): Promise<void> {
  const xml = daemon.writeFile(
    `${SENTINEL}.xml`,
    `<domain type='qemu'><name>${SENTINEL}</name><memory unit='MiB'>16</memory><os><type arch='x86_64'>hvm</type></os><devices><emulator>${emulator.path}</emulator></devices></domain>\n`,
  );
  const line = `event 'lifecycle' for domain '${SENTINEL}': Undefined Removed`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    await daemon.virshOk("define", xml);
    await daemon.virshOk("undefine", SENTINEL);
    try {
      await watch.waitFor(line, "from the sentinel domain", 2_000);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
  }
}

/** The pids in the `NAME.pid` files a session daemon keeps in `runDir`, by NAME. */
function emulatorPids(runDir: string): Map<string, number> {
  const pids = new Map<string, number>();
  if (!existsSync(runDir)) return pids;
  for (const f of readdirSync(runDir)) {
    if (!f.endsWith(".pid") || f === "driver.pid") continue;
    const pid = Number(readFileSync(join(runDir, f), "utf8").trim());
    if (Number.isInteger(pid) && pid > 1) pids.set(f.slice(0, -4), pid);
  }
  return pids;
}

/** SIGKILLs the emulators whose pid files a session daemon left in `runDir`. */
function killEmulators(runDir: string): void {
  for (const pid of emulatorPids(runDir).values()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function readLogFrom(path: string, offset: number): string {
  if (!existsSync(path)) return "";
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** The last `n` lines of `text`. */
function tail(text: string, n: number): string {
  return text.split("\n").slice(-n).join("\n");
}

/** `name` found on the test's PATH (the wrapper runs with the daemon's), or as given if it has a `/`. */
function onPath(name: string): string {
  if (name.includes("/")) return name;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const path = join(dir, name);
    if (dir !== "" && existsSync(path)) return path;
  }
  throw new Error(`${name} not found on PATH`);
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------ the QMP transcript

/** One message of libvirt's QMP traffic, as its debug log records it. */
export interface QmpLogEntry {
  /** The monitor (libvirt's pointer; reused after a monitor closes, so read with `session`). */
  readonly mon: string;
  /** Counts monitor openings in the log: the n-th QEMU_MONITOR_NEW. */
  readonly session: number;
  readonly kind: "send" | "reply" | "event";
  /** The JSON text. */
  readonly text: string;
}

const LOG_LINE =
  /QEMU_MONITOR_(NEW|SEND_MSG|RECV_REPLY|RECV_EVENT|CLOSE): mon=(0x[0-9a-f]+)(?: (?:msg|reply|event)=(.*?))?(?: fd=-?\d+)?$/;

/** The QMP messages in a libvirtd debug log (levels as {@link LOG_FILTERS} sets them). */
export function qmpLogEntries(log: string): QmpLogEntry[] {
  const entries: QmpLogEntry[] = [];
  const sessions = new Map<string, number>();
  let opened = 0;
  // A sent message ends with its own CR LF, so its line ends in CR and ` fd=…` follows alone.
  for (const line of log.split("\n")) {
    const m = LOG_LINE.exec(line.replace(/\r$/, ""));
    if (m === null) continue;
    const [, what, mon] = m as unknown as [string, string, string, string | undefined];
    if (what === "NEW") {
      sessions.set(mon, ++opened);
      continue;
    }
    if (what === "CLOSE") continue;
    const text = m[3] ?? "";
    const kind = what === "SEND_MSG" ? "send" : what === "RECV_REPLY" ? "reply" : "event";
    entries.push({ mon, session: sessions.get(mon) ?? 0, kind, text });
  }
  return entries;
}
