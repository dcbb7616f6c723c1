/**
 * Test support: start a real `qemu-system-x86_64` with a QMP unix socket, and talk to it (or to
 * any QMP server) byte by byte, keeping a transcript. Real QEMU is the oracle (docs/design.md).
 *
 * Two real QEMUs can be run: the system's (Debian 12's 7.2.22, {@link SYSTEM_QEMU}, the default
 * everywhere) and Debian's backported 10.0 unpacked beside it by `.ci/install-qemu-10`
 * ({@link QEMU_10}, found through `QMPKIT_QEMU_10`). In CI (`CI` set) a missing QEMU is a
 * failure; on a developer machine the real-QEMU tests skip with a loud message.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { unixSocketListening } from "./wait-for-path.js";

export const qemuBinary = process.env.QMPKIT_QEMU ?? "qemu-system-x86_64";

/** A real QEMU binary the tests can start. */
export interface QemuInstallation {
  /** What to call it in messages, e.g. `QEMU 10.0`. */
  readonly label: string;
  readonly binary: string;
  /**
   * A data directory passed with `-L` (firmware, option ROMs, keymaps), for a QEMU unpacked away
   * from the prefix it was built for; QEMU still searches its built-in directory after it, so
   * the system's SeaBIOS is found where the unpacked tree has none.
   */
  readonly dataDir?: string | undefined;
  /**
   * Where its modules are (`QEMU_MODULE_DIR`), for a QEMU unpacked away from its prefix:
   * otherwise it loads the system QEMU's modules from the built-in directory, which belong to
   * another build (10.0.2 then aborts in util/module.c as soon as it loads them all, e.g. for
   * `qom-list-types`).
   */
  readonly moduleDir?: string | undefined;
  /** How to get it, for the skip message. */
  readonly installHint: string;
}

/** The system's QEMU (`QMPKIT_QEMU`, else `qemu-system-x86_64` on the PATH): 7.2.22 here and in CI. */
export const SYSTEM_QEMU: QemuInstallation = {
  label: "QEMU",
  binary: qemuBinary,
  installHint: "apt-get install qemu-system-x86",
};

/** Where `.ci/install-qemu-10` unpacks Debian's backported QEMU 10.0 by default. */
export const DEFAULT_QEMU_10_BINARY = "/opt/qemu-10.0/usr/bin/qemu-system-x86_64";

/** `PREFIX/share/qemu` for `PREFIX/bin/qemu-system-…`, if that directory exists. */
function dataDirBeside(binary: string): string | undefined {
  const dir = join(dirname(dirname(binary)), "share", "qemu");
  return existsSync(dir) ? dir : undefined;
}

/** `PREFIX/lib/x86_64-linux-gnu/qemu` for `PREFIX/bin/qemu-system-…`, if that directory exists. */
function moduleDirBeside(binary: string): string | undefined {
  const dir = join(dirname(dirname(binary)), "lib", "x86_64-linux-gnu", "qemu");
  return existsSync(dir) ? dir : undefined;
}

const qemu10Binary = process.env.QMPKIT_QEMU_10 || DEFAULT_QEMU_10_BINARY;

/**
 * Debian's QEMU 10.0 (bookworm-backports), unpacked beside the system's 7.2 by
 * `.ci/install-qemu-10`; CI exports its path as `QMPKIT_QEMU_10`.
 */
export const QEMU_10: QemuInstallation = {
  label: "QEMU 10.0",
  binary: qemu10Binary,
  dataDir: dataDirBeside(qemu10Binary),
  moduleDir: moduleDirBeside(qemu10Binary),
  installHint: "bash .ci/install-qemu-10 as root, or set QMPKIT_QEMU_10",
};

const available = new Map<string, boolean>();

/** Whether `qemu` (default: the system's) can be run on this machine. */
export function qemuAvailable(qemu: QemuInstallation = SYSTEM_QEMU): boolean {
  let ok = available.get(qemu.binary);
  if (ok === undefined) {
    ok = spawnSync(qemu.binary, ["--version"], { stdio: "ignore" }).status === 0;
    available.set(qemu.binary, ok);
  }
  return ok;
}

/**
 * Options for a test that needs real QEMU (default: the system's): `{ skip }` on a developer
 * machine without it. In CI the test runs anyway and fails on the missing binary, as it must.
 */
export function realQemuTest(qemu: QemuInstallation = SYSTEM_QEMU): { skip?: string } {
  if (qemuAvailable(qemu) || process.env.CI) return {};
  const why = `${qemu.binary} not found: real-${qemu.label} conformance tests SKIPPED (${qemu.installHint})`;
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

export interface QemuProcess {
  readonly process: ChildProcess;
  /** The QMP unix socket path. */
  readonly socketPath: string;
  /** Everything QEMU wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** Kills the process if it is still running and removes its directory (if it made one). */
  stop(): Promise<void>;
}

export interface StartQemuOptions {
  /** `-machine` value. Default `none`. */
  machine?: string;
  /** Start with `-S` (paused, state `prelaunch`). Default true. */
  paused?: boolean;
  /** More arguments, appended. */
  args?: string[];
  /** Milliseconds to wait for the QMP socket to appear. Default 10 000. */
  startTimeoutMs?: number;
  /**
   * Where to open the QMP socket, for a QEMU restarted on the same path; the caller owns the
   * path and its directory (`stop` leaves them). Default: `qmp.sock` in a fresh temporary
   * directory that `stop` removes.
   */
  socketPath?: string;
  /** Which QEMU to run. Default {@link SYSTEM_QEMU}. */
  qemu?: QemuInstallation | undefined;
}

/** Starts QEMU with `-qmp unix:…,server=on,wait=off` and waits until its sockets listen. */
export async function startQemu(options: StartQemuOptions = {}): Promise<QemuProcess> {
  const dir =
    options.socketPath === undefined ? mkdtempSync(join(tmpdir(), "qmpkit-qemu-")) : undefined;
  const socketPath = options.socketPath ?? join(dir!, "qmp.sock");
  const removeDir = () => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  const qemu = options.qemu ?? SYSTEM_QEMU;
  const args = [
    ...(qemu.dataDir === undefined ? [] : ["-L", qemu.dataDir]),
    "-machine",
    options.machine ?? "none",
    "-display",
    "none",
    "-nodefaults",
    ...(options.paused === false ? [] : ["-S"]),
    "-qmp",
    `unix:${socketPath},server=on,wait=off`,
    ...(options.args ?? []),
  ];
  const env =
    qemu.moduleDir === undefined ? undefined : { ...process.env, QEMU_MODULE_DIR: qemu.moduleDir };
  const child = spawn(qemu.binary, args, { stdio: ["ignore", "ignore", "pipe"], env });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.on("error", (err) => resolve(`spawn error: ${err.message}`));
  });
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  // Every listening unix socket of the command line, ours first: QEMU creates them in order,
  // each file a moment before it listens.
  const sockets = [socketPath, ...listeningSocketPaths(options.args ?? [])];
  while (!sockets.every(unixSocketListening)) {
    if (gone || Date.now() > deadline) {
      child.kill("SIGKILL");
      removeDir();
      throw new Error(
        `qemu did not open its QMP socket: ${qemu.binary} ${args.join(" ")}\n${stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    process: child,
    socketPath,
    stderr: () => stderr,
    exited,
    async stop() {
      if (!gone) {
        child.kill("SIGKILL");
        await exited;
      }
      removeDir();
    },
  };
}

/** The paths of `-qmp unix:PATH,server…` and `-chardev socket,…path=PATH,…server=on` in `args`. */
function listeningSocketPaths(args: readonly string[]): string[] {
  const paths: string[] = [];
  for (let i = 0; i + 1 < args.length; i++) {
    const value = args[i + 1]!;
    if (args[i] === "-qmp" && value.startsWith("unix:") && /,server(=on)?(,|$)/.test(value)) {
      paths.push(value.slice(5).split(",")[0]!);
    } else if (
      args[i] === "-chardev" &&
      value.startsWith("socket,") &&
      /,server(=on)?(,|$)/.test(value)
    ) {
      const path = /(?:^|,)path=([^,]+)/.exec(value)?.[1];
      if (path !== undefined) paths.push(path);
    }
  }
  return paths;
}

/**
 * A raw QMP peer over a unix socket: sends bytes as given and collects what arrives, split into
 * `\n`-terminated lines (QEMU ends every message with `\r\n`). No JSON library in between, so
 * tests can compare servers byte for byte.
 */
export class RawQmp {
  private buffer = "";
  private readonly lines: string[] = [];
  private waiters: Array<() => void> = [];
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl = this.buffer.indexOf("\n");
      while (nl >= 0) {
        this.lines.push(this.buffer.slice(0, nl + 1));
        this.buffer = this.buffer.slice(nl + 1);
        nl = this.buffer.indexOf("\n");
      }
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  static connect(path: string): Promise<RawQmp> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once("connect", () => resolve(new RawQmp(socket)));
      socket.once("error", reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Writes bytes (a string is sent as UTF-8, a Buffer as is). */
  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** The next line (with its `\r\n`), or `undefined` at end of stream or after `timeoutMs`. */
  async nextLine(timeoutMs = 5_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.lines.shift();
  }

  /** The next message parsed as JSON, or `undefined` (end or timeout). */
  async next(timeoutMs = 5_000): Promise<Record<string, unknown> | undefined> {
    const line = await this.nextLine(timeoutMs);
    return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
  }

  /** Every line that arrives within `quietMs` of the previous one. */
  async drain(quietMs = 200): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const line = await this.nextLine(quietMs);
      if (line === undefined) return out;
      out.push(line);
    }
  }

  /** Reads the greeting and negotiates; returns the greeting line. */
  async handshake(): Promise<string> {
    const greeting = await this.nextLine();
    if (greeting === undefined) throw new Error("no QMP greeting");
    this.send('{"execute":"qmp_capabilities"}');
    const reply = await this.nextLine();
    if (reply !== '{"return": {}}\r\n') throw new Error(`negotiation failed: ${reply}`);
    return greeting;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * The `query-qmp-schema` answer of a QEMU binary, as it sends it: started with `-machine none -S`
 * (the schema does not depend on the machine), asked once, stopped.
 * @throws Error when the answer is not a list.
 */
export async function liveQmpSchema(qemu: QemuInstallation = SYSTEM_QEMU): Promise<unknown[]> {
  const vm = await startQemu({ qemu });
  try {
    const raw = await RawQmp.connect(vm.socketPath);
    try {
      await raw.handshake();
      raw.send('{"execute": "query-qmp-schema"}\n');
      const reply = (await raw.next(20_000))?.return;
      if (!Array.isArray(reply)) throw new Error(`${qemu.binary}: no query-qmp-schema list`);
      return reply;
    } finally {
      raw.close();
    }
  } finally {
    await vm.stop();
  }
}
