/**
 * Test support for the libvirt conformance tests: a domain's command line as libvirt 9.0 writes
 * it (taken from `/var/log/libvirt/qemu/NAME.log` of a domain started by Debian's libvirtd with
 * QEMU 7.2.22), and a process started with the monitor socket libvirt binds itself, passed as
 * an inherited descriptor (`-chardev socket,id=charmonitor,fd=3,server=on,wait=off`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { QemuInstallation } from "../support/real-qemu.js";
import { RawQmp } from "../support/real-qemu.js";

/** `src/cli/qemu-main.ts`, run with tsx: the simulator as a drop-in binary. */
export const QEMU_MAIN = resolve(import.meta.dirname, "../../src/cli/qemu-main.ts");

/** What the domain has besides its vCPU. */
export interface DomainShape {
  /** A raw disk image on virtio-blk through two `-blockdev` nodes. */
  readonly disk?: string | undefined;
  /** A pty serial console (`-chardev pty` + `isa-serial`) logged to an fd set (`-add-fd`). */
  readonly ptySerial?: boolean | undefined;
  /** A user-mode NIC. */
  readonly nic?: boolean | undefined;
  /** A virtio balloon. */
  readonly balloon?: boolean | undefined;
  /** `-smp` (default `1,sockets=1,cores=1,threads=1`). */
  readonly smp?: string | undefined;
}

/**
 * libvirt 9.0's command line for a small domain (the order and spelling of its domain log),
 * with the monitor on fd 3 and, with a pty serial, its log file on fd 4.
 */
export function libvirtCommandLine(name: string, dir: string, shape: DomainShape): string[] {
  const args = [
    "-name",
    `guest=${name},debug-threads=on`,
    "-S",
    "-object",
    JSON.stringify({
      "qom-type": "secret",
      id: "masterKey0",
      format: "raw",
      file: join(dir, "master-key.aes"),
    }),
    "-machine",
    "pc-i440fx-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram",
    "-accel",
    "tcg",
    "-cpu",
    "qemu64",
    "-m",
    "64",
    "-object",
    '{"qom-type":"memory-backend-ram","id":"pc.ram","size":67108864}',
    "-overcommit",
    "mem-lock=off",
    "-smp",
    shape.smp ?? "1,sockets=1,cores=1,threads=1",
    "-uuid",
    "6c9e3f0a-3b1e-4d2a-9a51-0d2b8a1f0101",
    "-display",
    "none",
    "-no-user-config",
    "-nodefaults",
    "-chardev",
    "socket,id=charmonitor,fd=3,server=on,wait=off",
    "-mon",
    "chardev=charmonitor,id=monitor,mode=control",
    "-rtc",
    "base=utc",
    "-no-shutdown",
    "-boot",
    "strict=on",
    "-device",
    '{"driver":"piix3-usb-uhci","id":"usb","bus":"pci.0","addr":"0x1.0x2"}',
  ];
  if (shape.disk !== undefined) {
    args.push(
      "-blockdev",
      JSON.stringify({
        driver: "file",
        filename: shape.disk,
        "node-name": "libvirt-1-storage",
        "auto-read-only": true,
        discard: "unmap",
      }),
      "-blockdev",
      '{"node-name":"libvirt-1-format","read-only":false,"driver":"raw","file":"libvirt-1-storage"}',
      "-device",
      '{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x3","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1}',
    );
  }
  if (shape.nic) {
    args.push(
      "-netdev",
      '{"type":"user","id":"hostnet0"}',
      "-device",
      '{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:12:34:56","bus":"pci.0","addr":"0x2"}',
    );
  }
  if (shape.ptySerial) {
    args.push(
      "-add-fd",
      "set=0,fd=4,opaque=serial0-log",
      "-chardev",
      "pty,id=charserial0,logfile=/dev/fdset/0,logappend=on",
      "-device",
      '{"driver":"isa-serial","chardev":"charserial0","id":"serial0","index":0}',
    );
  }
  args.push("-audiodev", '{"id":"audio1","driver":"none"}');
  if (shape.balloon) {
    args.push(
      "-device",
      '{"driver":"virtio-balloon-pci","id":"balloon0","bus":"pci.0","addr":"0x4"}',
    );
  }
  args.push(
    "-sandbox",
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-msg",
    "timestamp=on",
  );
  return args;
}

/** A domain process (real QEMU or the simulator) with its monitor socket. */
export interface DomainProcess {
  readonly process: ChildProcess;
  /** Where the monitor listens (the socket libvirt would have bound). */
  readonly monitorPath: string;
  readonly dir: string;
  stderr(): string;
  connect(): Promise<RawQmp>;
  readonly exited: Promise<number | string>;
  stop(): Promise<void>;
}

/** Which program runs the domain. */
export type DomainProgram =
  | { readonly kind: "real"; readonly qemu: QemuInstallation }
  | { readonly kind: "sim"; readonly version: string };

/**
 * Starts `program` with libvirt's command line for `shape`: binds the monitor socket and passes
 * it as fd 3 (and a log file as fd 4), as libvirt does.
 */
export async function startDomain(
  program: DomainProgram,
  shape: DomainShape,
  name = "lvsim",
): Promise<DomainProcess> {
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-libvirt-"));
  writeFileSync(join(dir, "master-key.aes"), Buffer.alloc(32, 7));
  const monitorPath = join(dir, "monitor.sock");
  const server: Server = createServer();
  await new Promise<void>((ok) => server.listen(monitorPath, ok));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const logFd = openSync(join(dir, "serial0.log"), "a");
  const args = libvirtCommandLine(name, dir, shape);
  let child: ChildProcess;
  if (program.kind === "real") {
    const { qemu } = program;
    child = spawn(
      qemu.binary,
      [...(qemu.dataDir === undefined ? [] : ["-L", qemu.dataDir]), ...args],
      {
        stdio: ["ignore", "ignore", "pipe", fd, logFd],
        env:
          qemu.moduleDir === undefined
            ? process.env
            : { ...process.env, QEMU_MODULE_DIR: qemu.moduleDir },
      },
    );
  } else {
    child = spawn(
      process.execPath,
      ["--import", "tsx", QEMU_MAIN, "--qemu-version", program.version, ...args],
      {
        stdio: ["ignore", "ignore", "pipe", fd, logFd],
        env: { ...process.env, QMPKIT_SIM_CONFIG: "/dev/null" },
      },
    );
  }
  // The child has its copies; ours go, as libvirt closes them after the fork. Node unlinks a
  // socket's path when its server closes: the path steps aside meanwhile (the socket is its
  // inode, so clients reach the child's copy through the path again).
  renameSync(monitorPath, `${monitorPath}.aside`);
  await new Promise<void>((ok) => server.close(() => ok()));
  renameSync(`${monitorPath}.aside`, monitorPath);
  closeSync(logFd);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
  });
  const exited = new Promise<number | string>((done) => {
    child.once("exit", (code, signal) => done(code ?? signal ?? "unknown"));
  });
  return {
    process: child,
    monitorPath,
    dir,
    stderr: () => stderr,
    exited,
    async connect() {
      // The socket listens from the start (libvirt bound it); QEMU answers once it is up.
      const qmp = await RawQmp.connect(monitorPath);
      await qmp.handshake();
      return qmp;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
