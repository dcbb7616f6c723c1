/**
 * The domain options libvirt writes (qemu-behaviour §13): what the parser keeps of them, and
 * the refusals, compared with what QEMU 7.2.22 and 10.0.2 print for the same line.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { DROP_IN_OPTIONS, resolveDropIn } from "../../src/cli/qemu-dropin.js";
import { parseJsonOrKeyval, smpTopology } from "../../src/sim/domain-config.js";
import { parseQemuOptions } from "../../src/sim/qemu-options.js";
import { libvirtCommandLine } from "../conformance/libvirt-support.js";
import {
  QEMU_10,
  type QemuInstallation,
  qemuAvailable,
  realQemuTest,
  SYSTEM_QEMU,
} from "../support/real-qemu.js";

/** Parses a line as `qmpkit-qemu` does; the refusal's text, or `accepted`. */
function simOutcome(version: string, args: readonly string[]): string {
  try {
    resolveDropIn(
      parseQemuOptions(["--qemu-version", version, ...args], { extraOptions: DROP_IN_OPTIONS }),
    );
    return "accepted";
  } catch (e) {
    return (e as Error).message;
  }
}

/** What QEMU prints first on stderr for a line it refuses (its program name taken off). */
function realOutcome(qemu: QemuInstallation, args: readonly string[]): string {
  const run = spawnSync(
    qemu.binary,
    [...(qemu.dataDir === undefined ? [] : ["-L", qemu.dataDir]), ...args],
    {
      encoding: "utf8",
      timeout: 30_000,
      env:
        qemu.moduleDir === undefined
          ? process.env
          : { ...process.env, QEMU_MODULE_DIR: qemu.moduleDir },
    },
  );
  if (run.status === null) return "accepted"; // still running at the timeout
  return (run.stderr.split("\n")[0] ?? "").replace(/^qemu-system-x86_64: /, "");
}

const BASE = ["-machine", "pc-i440fx-7.2,accel=tcg", "-nodefaults", "-S", "-display", "none"];

/** Lines QEMU refuses; each is added to {@link BASE}. */
const REFUSED: ReadonlyArray<readonly string[]> = [
  ["-object", '{"qom-type":"nosuch","id":"x"}'],
  ["-object", '{"qom-type":"secret","id":"s0"}'],
  ["-object", '{"qom-type":"memory-backend-ram","id":"pc.ram"}'],
  ["-object", "memory-backend-ram,id=m0,size=bad"],
  ["-object", '{"id":"x"}'],
  ["-device", '{"driver":"nosuch"}'],
  ["-device", '{"driver":"isa-serial","chardev":"nochar","id":"serial0"}'],
  ["-device", "{"],
  ["-device", '{"driver":"virtio-blk-pci","drive":"nonode","id":"d0"}'],
  ["-blockdev", '{"driver":"file","node-name":"n1"}'],
  ["-blockdev", '{"driver":"file","filename":"/nonexistent/x.raw","node-name":"n1"}'],
  ["-blockdev", '{"driver":"raw","file":"nonode","node-name":"n2"}'],
  ["-netdev", '{"type":"user"}'],
  ["-netdev", '{"type":"nosuch","id":"n0"}'],
  ["-smp", "2,sockets=1,cores=1,threads=1"],
  ["-machine", "pc-i440fx-7.2,memory-backend=nope"],
  ["-machine", "pc-i440fx-7.2,nosuchprop=on"],
  ["-chardev", "pty"],
  ["-chardev", "nosuch,id=c0"],
  ["-chardev", "file,id=c0,path=/dev/fdset/5"],
  ["-add-fd", "set=1"],
  ["-add-fd", "fd=99,set=1"],
  ["-uuid", "bad"],
  ["-audiodev", '{"driver":"none"}'],
  ["-audiodev", '{"id":"a1","driver":"nosuch"}'],
  ["-cpu", "nosuch"],
  ["-boot", "strict=maybe"],
  ["-msg", "timestamp=maybe"],
  ["-name", "guest=x,debug-threads=maybe"],
  ["-mon", "chardev=nochar,id=monitor,mode=control"],
];

suite("libvirt's domain options", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "qmpkit-domain-config-"));
    writeFileSync(join(dir, "disk.raw"), "");
    truncateSync(join(dir, "disk.raw"), 1 << 20);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("should keep what a libvirt domain's line configures", (t) => {
    // -add-fd needs a descriptor that is open (QEMU: "fd is not valid or already in use").
    const logFd = openSync(join(dir, "serial0.log"), "a");
    t.after(() => closeSync(logFd));
    const args = libvirtCommandLine("vm1", dir, {
      disk: join(dir, "disk.raw"),
      ptySerial: true,
      nic: true,
      balloon: true,
      smp: "2,sockets=2,cores=1,threads=1",
    }).map((a) => a.replace("fd=3", "fd=5").replace("fd=4", `fd=${logFd}`));
    const line = parseQemuOptions(args, { extraOptions: DROP_IN_OPTIONS });
    const d = line.domain;
    assert.equal(line.name, "vm1");
    assert.equal(line.startPaused, true);
    assert.equal(line.machine, "pc");
    assert.equal(d.machineType, "pc-i440fx-7.2");
    assert.equal(d.memoryBackend, "pc.ram");
    assert.equal(line.memoryBytes, 64 << 20);
    assert.equal(d.cpuModel, "qemu64");
    assert.deepEqual(smpTopology(d.smp), {
      cpus: 2,
      maxcpus: 2,
      sockets: 2,
      dies: 1,
      cores: 1,
      threads: 1,
    });
    assert.equal(d.uuid, "6c9e3f0a-3b1e-4d2a-9a51-0d2b8a1f0101");
    assert.deepEqual(
      d.objects.map((o) => [o.qomType, o.id]),
      [
        ["secret", "masterKey0"],
        ["memory-backend-ram", "pc.ram"],
      ],
    );
    assert.deepEqual(
      d.chardevs.map((c) => [c.id, c.backend]),
      [
        ["charmonitor", "socket"],
        ["charserial0", "pty"],
      ],
    );
    assert.deepEqual([...d.fdsets], [[0, [logFd]]]);
    assert.deepEqual(
      d.blockNodes.map((n) => [n.nodeName, n.driver, n.file ?? n.filename]),
      [
        ["libvirt-1-storage", "file", join(dir, "disk.raw")],
        ["libvirt-1-format", "raw", "libvirt-1-storage"],
      ],
    );
    assert.deepEqual(
      d.peripherals.map((p) => [p.id, p.driver]),
      [
        ["usb", "piix3-usb-uhci"],
        ["virtio-disk0", "virtio-blk-pci"],
        ["net0", "virtio-net-pci"],
        ["serial0", "isa-serial"],
        ["balloon0", "virtio-balloon-pci"],
      ],
    );
    assert.deepEqual(
      d.netdevs.map((n) => [n.id, n.type]),
      [["hostnet0", "user"]],
    );
    assert.equal(line.balloon, true);
    assert.deepEqual(resolveDropIn(line).fdMonitors, [
      { id: "charmonitor", fd: 5, server: true, pretty: false },
    ]);
  });

  test("should read the JSON and the key=value spellings alike", () => {
    assert.deepEqual(
      parseJsonOrKeyval("-device x", "virtio-net-pci,id=n0,mac=52:54:00:12:34:56", "driver"),
      {
        driver: "virtio-net-pci",
        id: "n0",
        mac: "52:54:00:12:34:56",
      },
    );
    assert.deepEqual(
      parseJsonOrKeyval("-device x", '{"driver":"virtio-net-pci","id":"n0"}', "driver"),
      {
        driver: "virtio-net-pci",
        id: "n0",
      },
    );
    const a = parseQemuOptions([
      "-object",
      "memory-backend-ram,id=m,size=32M",
      "-machine",
      "pc,memory-backend=m",
    ]);
    assert.equal(a.memoryBytes, 32 << 20);
    const b = parseQemuOptions(["-netdev", "user,id=h0", "-device", "e1000,netdev=h0,id=n0"]);
    assert.deepEqual(b.netdevs, ["h0"]);
    assert.deepEqual(b.nics, [{ id: "n0", driver: "e1000" }]);
  });

  test("should keep each device id once, as QEMU refuses a second", () => {
    assert.match(
      simOutcome("7.2.22", [
        ...BASE,
        "-device",
        "pci-bridge,chassis_nr=1,id=a",
        "-device",
        "pci-bridge,chassis_nr=2,id=a",
      ]),
      /Duplicate device ID 'a'/,
    );
  });

  for (const [version, qemu] of [
    ["7.2.22", SYSTEM_QEMU],
    ["10.0.2", QEMU_10],
  ] as const) {
    test(`should refuse what QEMU ${version} refuses, with its text`, realQemuTest(qemu), () => {
      assert.ok(qemuAvailable(qemu), `${qemu.binary} is needed`);
      const differences: string[] = [];
      for (const extra of REFUSED) {
        const args = [...BASE, ...extra];
        const real = realOutcome(qemu, args);
        const sim = simOutcome(version, args);
        assert.notEqual(real, "accepted", `QEMU ${version} accepted ${extra.join(" ")}`);
        if (sim !== real) differences.push(`${extra.join(" ")}\n  real: ${real}\n  sim:  ${sim}`);
      }
      assert.deepEqual(differences, [], differences.join("\n"));
    });
  }
});
