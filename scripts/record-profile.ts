/**
 * `npm run record-profile -- 7.2.22 [BINARY]` (or `10.0.2`): asks a real QEMU the questions
 * libvirt 9.0's capability probe asks and writes its answers, byte for byte, to
 * `profiles/qemu-VERSION.jsonl`, the capability profile the simulator answers from
 * (`src/sim/recorded-profile.ts`). `--check` compares instead of writing (exit 1 on drift);
 * `test/conformance/profiles.test.ts` does the same in the test suite.
 *
 * The questions and their arguments are libvirt 9.0's, in its order, as its QMP log shows them
 * for QEMU 7.2 (`src/qemu/qemu_capabilities.c`: virQEMUCapsInitQMPMonitor and the
 * virQEMUCapsDeviceProps / virQEMUCapsObjectProps tables). QEMU runs as libvirt starts it for
 * the probe (qemuProcessQMPLaunch: `-S -no-user-config -nodefaults -nographic -machine
 * none,accel=kvm:tcg`), with `-machine none,accel=tcg`: without KVM (this machine, CI) QEMU
 * falls back to TCG anyway, and a recording must not depend on /dev/kvm. What the accelerator
 * changes (`query-kvm`'s `enabled`, `query-sev-capabilities`' and `query-sgx-capabilities`'
 * errors, the `host` CPU model's expansion, `unavailable-features`) is therefore TCG's.
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { formatProfile, type ProfileRecord, profilePath } from "../src/sim/recorded-profile.js";
import { type AskEachOptions, type QmpRequest, realReplies } from "../test/support/ask-each.js";
import {
  QEMU_10,
  type QemuInstallation,
  SYSTEM_QEMU,
  type StartQemuOptions,
} from "../test/support/real-qemu.js";

/** A request of the probe: a command and its arguments (none when undefined). */
export type ProbeRequest = QmpRequest;

/** How {@link recordProfile} starts QEMU (see `PROFILE_COMMAND_LINE`). */
export const PROFILE_QEMU_OPTIONS: StartQemuOptions = {
  machine: "none,accel=tcg",
  args: ["-no-user-config"],
};

const typename = (execute: string, names: readonly string[]): ProbeRequest[] =>
  names.map((t) => ({ execute, arguments: { typename: t } }));

/**
 * libvirt 9.0's probe of an x86_64 QEMU, request by request (its `qmp_capabilities` aside).
 * `query-cpu-model-expansion` is asked for `host` three ways, as libvirt asks a QEMU whose
 * accelerator it takes for KVM's or TCG's alike (virQEMUCapsProbeQMPHostCPU).
 */
export const LIBVIRT_PROBE: readonly ProbeRequest[] = [
  { execute: "query-version" },
  { execute: "query-target" },
  { execute: "query-qmp-schema" },
  { execute: "query-commands" },
  { execute: "query-kvm" },
  { execute: "qom-list-types" },
  ...typename("device-list-properties", [
    "virtio-blk-pci",
    "virtio-net-pci",
    "virtio-scsi-pci",
    "virtio-net-ccw",
    "virtio-scsi-ccw",
    "vfio-pci",
    "scsi-hd",
    "ide-hd",
    "PIIX4_PM",
    "usb-redir",
    "usb-storage",
    "kvm-pit",
    "VGA",
    "vmware-svga",
    "qxl",
    "virtio-gpu-pci",
    "virtio-gpu-device",
    "ICH9-LPC",
    "virtio-balloon-pci",
    "virtio-balloon-ccw",
    "virtio-balloon-device",
    "intel-iommu",
    "mch",
    "nvdimm",
    "pcie-root-port",
    "usb-host",
    "vhost-user-fs-device",
    "virtio-mem-pci",
    "virtio-iommu-pci",
  ]),
  ...typename("qom-list-properties", [
    "memory-backend-file",
    "memory-backend-memfd",
    "max-x86_64-cpu",
  ]),
  { execute: "query-machines" },
  ...typename("qom-list-properties", ["none-machine"]),
  { execute: "query-cpu-definitions" },
  { execute: "query-tpm-models" },
  { execute: "query-tpm-types" },
  { execute: "query-command-line-options" },
  { execute: "query-migrate-capabilities" },
  { execute: "query-sev-capabilities" },
  { execute: "query-sgx-capabilities" },
  { execute: "query-cpu-model-expansion", arguments: { type: "static", model: { name: "host" } } },
  {
    execute: "query-cpu-model-expansion",
    arguments: { type: "static", model: { name: "host", props: { migratable: false } } },
  },
  {
    execute: "query-cpu-model-expansion",
    arguments: {
      type: "full",
      model: { name: "host", props: { migratable: false, "hv-passthrough": true } },
    },
  },
];

/**
 * Recorded beside the probe, for the simulator's own use: every type with its parent and
 * whether it is abstract, from which it answers `device-list-properties` and
 * `qom-list-properties` of types nobody recorded with QEMU's errors.
 */
export const PROFILE_EXTRAS: readonly ProbeRequest[] = [
  { execute: "qom-list-types", arguments: { abstract: true } },
];

/** The profiles shipped, and the QEMU each is recorded from. */
export const RECORDED_RELEASES: ReadonlyMap<string, QemuInstallation> = new Map([
  ["7.2.22", SYSTEM_QEMU],
  ["10.0.2", QEMU_10],
]);

/**
 * Starts `qemu` as libvirt's probe does ({@link PROFILE_COMMAND_LINE}: startQemu adds
 * `-display none -nodefaults -S` and the `-qmp` socket), asks it `requests` and returns each
 * request with QEMU's reply line as it printed it. Fails unless every request gets its reply,
 * so a profile is never half recorded.
 */
export async function recordProfile(
  qemu: QemuInstallation,
  requests: readonly ProbeRequest[] = [...LIBVIRT_PROBE, ...PROFILE_EXTRAS],
  options: AskEachOptions = {},
): Promise<ProfileRecord[]> {
  const replies = await realReplies(qemu, requests, PROFILE_QEMU_OPTIONS, options);
  return requests.map((r, i) => ({
    execute: r.execute,
    arguments: r.arguments,
    reply: replies[i]!,
  }));
}

async function main(argv: readonly string[]): Promise<number> {
  const check = argv.includes("--check");
  const [version, binary] = argv.filter((a) => a !== "--check");
  const known = version === undefined ? undefined : RECORDED_RELEASES.get(version);
  if (version === undefined || known === undefined) {
    console.error(
      `usage: record-profile [--check] VERSION [BINARY]  (VERSION: ${[...RECORDED_RELEASES.keys()].join(", ")})`,
    );
    return 2;
  }
  const qemu = binary === undefined ? known : { ...known, binary };
  const text = formatProfile(version, await recordProfile(qemu));
  const path = profilePath(version);
  if (check) {
    const shipped = readFileSync(path, "latin1");
    if (shipped === text) {
      console.log(`${path}: ${qemu.binary} answers as recorded`);
      return 0;
    }
    console.error(`${path}: ${qemu.binary} answers differently (re-record with record-profile)`);
    return 1;
  }
  writeFileSync(path, text, "latin1");
  console.log(`wrote ${path} (${text.length} bytes) from ${qemu.binary}`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}
