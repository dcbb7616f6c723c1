/**
 * `npm run record-profile`'s companion for the running domain: `tsx scripts/record-vcpu.ts
 * 7.2.22 [--check]` (or `10.0.2`) starts the real QEMU with a vCPU of the model libvirt gives a
 * TCG domain by default (`-machine pc-i440fx-7.2 -accel tcg -cpu qemu64`), and records what
 * libvirt 9.0 asks of it once the domain starts (qemuMonitorJSONGetGuestCPU: `qom-list` of the
 * vCPU, then `qom-get` of each property) into `profiles/qemu-VERSION-vcpu-qemu64.jsonl`. The
 * simulator answers every vCPU of that model from it (`src/sim/modules/domain.ts`).
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { requestLine, vcpuProfilePath, type ProfileRecord } from "../src/sim/recorded-profile.js";
import { type QmpRequest, realReplies } from "../test/support/ask-each.js";
import type { QemuInstallation, StartQemuOptions } from "../test/support/real-qemu.js";
import { RECORDED_RELEASES } from "./record-profile.js";

/** The vCPU's QOM path on `-machine pc` with one CPU: the first device the machine creates. */
export const VCPU_PATH = "/machine/unattached/device[0]";

/** How QEMU runs for the recording (startQemu adds `-display none -nodefaults -S -qmp …`). */
export const VCPU_QEMU_ARGS: readonly string[] = [
  "-device",
  "virtio-balloon-pci,id=balloon0",
  "-blockdev",
  '{"driver":"file","filename":"DISK","node-name":"libvirt-1-storage","auto-read-only":true,"discard":"unmap"}',
  "-blockdev",
  '{"node-name":"libvirt-1-format","read-only":false,"driver":"raw","file":"libvirt-1-storage"}',
  "-device",
  '{"driver":"virtio-blk-pci","drive":"libvirt-1-format","id":"virtio-disk0"}',
  "-accel",
  "tcg",
  "-cpu",
  "qemu64",
  "-smp",
  "1,sockets=1,cores=1,threads=1",
  "-no-user-config",
];

/** Records the vCPU's properties: `qom-list`, then `qom-get` of each, in `qom-list`'s order. */
export async function recordVcpu(version: string): Promise<string> {
  const qemu = RECORDED_RELEASES.get(version);
  if (qemu === undefined) throw new Error(`no QEMU for ${version}`);
  // A raw image for the disk whose statistics libvirt reads (QEMU's counters before any I/O).
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-vcpu-"));
  const disk = join(dir, "disk.raw");
  writeFileSync(disk, "");
  truncateSync(disk, 16 << 20);
  const start = {
    machine: "pc-i440fx-7.2",
    args: VCPU_QEMU_ARGS.map((a) => a.replace('"DISK"', JSON.stringify(disk))),
  };
  try {
    return await recordWith(version, qemu, start);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function recordWith(
  version: string,
  qemu: QemuInstallation,
  start: StartQemuOptions,
): Promise<string> {
  const list: QmpRequest = { execute: "qom-list", arguments: { path: VCPU_PATH } };
  const [listed] = await realReplies(qemu, [list], start);
  const names = (JSON.parse(listed!) as { return: Array<{ name: string }> }).return.map(
    (p) => p.name,
  );
  const requests: QmpRequest[] = [
    // Static answers of a started domain that libvirt asks for `virsh domstats`.
    { execute: "query-stats-schemas" },
    { execute: "query-dirty-rate" },
    {
      execute: "qom-get",
      arguments: { path: "/machine/peripheral/balloon0", property: "guest-stats" },
    },
    { execute: "qom-list", arguments: { path: "/machine/peripheral/balloon0" } },
    { execute: "query-blockstats" },
    { execute: "query-blockstats", arguments: { "query-nodes": true } },
    list,
    ...names.map((property) => ({
      execute: "qom-get",
      arguments: { path: VCPU_PATH, property },
    })),
  ];
  const replies = await realReplies(qemu, requests, start);
  const records: ProfileRecord[] = requests.map((r, i) => ({
    execute: r.execute,
    arguments: r.arguments,
    reply: replies[i]!,
  }));
  const header = {
    "qmpkit-profile": 1,
    qemu: version,
    "command-line": [
      "qemu-system-x86_64",
      "-machine",
      "pc-i440fx-7.2",
      ...VCPU_QEMU_ARGS.map((a) => a.replace('"DISK"', '"PATH"')),
      "-display",
      "none",
      "-nodefaults",
      "-S",
      "-qmp",
      "unix:PATH,server=on,wait=off",
    ],
  };
  const lines = [JSON.stringify(header)];
  for (const r of records) lines.push(requestLine(r.execute, r.arguments), r.reply);
  return `${lines.join("\n")}\n`;
}

async function main(argv: readonly string[]): Promise<number> {
  const check = argv.includes("--check");
  const [version] = argv.filter((a) => a !== "--check");
  if (version === undefined || !RECORDED_RELEASES.has(version)) {
    console.error(
      `usage: record-vcpu [--check] VERSION  (${[...RECORDED_RELEASES.keys()].join(", ")})`,
    );
    return 2;
  }
  const text = await recordVcpu(version);
  const path = vcpuProfilePath(version, "qemu64");
  if (check) {
    const same = readFileSync(path, "latin1") === text;
    console[same ? "log" : "error"](`${path}: ${same ? "as recorded" : "differs"}`);
    return same ? 0 : 1;
  }
  writeFileSync(path, text, "latin1");
  console.log(`${path}: ${text.split("\n").length - 2} lines`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
