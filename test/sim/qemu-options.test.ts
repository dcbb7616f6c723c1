/** QEMU-spelled command lines for `qmpkit sim`. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { parseQemuOptions, QemuOptionError, splitQemuOpts } from "../../src/sim/qemu-options.js";

suite("parseQemuOptions", () => {
  test("should parse the usual QEMU command line", () => {
    const line = parseQemuOptions([
      "-machine",
      "none",
      "-display",
      "none",
      "-nodefaults",
      "-S",
      "-qmp",
      "unix:/tmp/a.sock,server=on,wait=off",
      "--qmp",
      "tcp:127.0.0.1:4444,server,nowait",
      "-no-shutdown",
      "-no-reboot",
      "-action",
      "panic=exit-failure,watchdog=pause",
      "-name",
      "guest=vm1,debug-threads=on",
      "-incoming",
      "defer",
      "-accel",
      "tcg",
      "--qemu-version",
      "10.2",
      "--strict",
      "--guest-script",
      "g.jsonl",
    ]);
    assert.deepEqual(line.monitors, [
      { target: "unix:/tmp/a.sock" },
      { target: "tcp:127.0.0.1:4444" },
    ]);
    assert.equal(line.startPaused, true);
    assert.deepEqual(line.actions, {
      shutdown: "pause",
      reboot: "shutdown",
      panic: "exit-failure",
      watchdog: "pause",
    });
    assert.equal(line.name, "vm1");
    assert.equal(line.incoming, "defer");
    assert.equal(line.machine, "none");
    assert.equal(line.qemuVersion, "10.2");
    assert.equal(line.strict, true);
    assert.equal(line.guestScript, "g.jsonl");
  });

  test("should take -M pc and machine types with ACPI as pc", () => {
    assert.equal(parseQemuOptions(["-M", "pc"]).machine, "pc");
    assert.equal(parseQemuOptions(["-machine", "type=q35,accel=kvm"]).machine, "pc");
    assert.equal(parseQemuOptions(["-machine", "pc-i440fx-7.2"]).machine, "pc");
  });

  test("should build devices from -drive and -device", () => {
    const line = parseQemuOptions([
      "-m",
      "64",
      "-drive",
      "if=none,id=cd0,media=cdrom",
      "-device",
      "ide-cd,drive=cd0,id=cdrom0",
      "-drive",
      "if=none,id=d1,werror=stop",
      "-device",
      "virtio-blk-pci,drive=d1,id=disk1",
      "-device",
      "virtio-balloon-pci,id=balloon0",
      "-device",
      "virtio-net-pci,netdev=n0,id=net0",
      "-device",
      "virtio-serial-pci",
      "-device",
      "virtserialport,name=org.qemu.guest_agent.0,id=qga0",
    ]);
    assert.equal(line.memoryBytes, 64 * 1024 * 1024);
    assert.deepEqual(line.blockDevices, [
      { id: "cd0", qdevId: "cdrom0", removable: true },
      { id: "d1", qdevId: "disk1", removable: false, werror: "stop" },
    ]);
    assert.deepEqual(line.nics, [{ id: "net0", driver: "virtio-net-pci" }]);
    assert.equal(line.balloon, true);
    assert.deepEqual(line.serialPorts, ["qga0"]);
    assert.equal(line.devices.find((d) => d.id === "cdrom0")?.hotpluggable, false);
  });

  test("should refuse unknown options, missing values and bad values clearly", () => {
    const refused = (argv: string[], pattern: RegExp) =>
      assert.throws(
        () => parseQemuOptions(argv),
        (e: unknown) => e instanceof QemuOptionError && pattern.test(e.message),
      );
    refused(["-bogus"], /^-bogus: invalid option \(supported: -qmp /);
    refused(["-qmp"], /^-qmp: requires an argument/);
    refused(["-qmp", "unix:/x,server=on"], /only listens: use 'unix:\/x,server=on,wait=off'/);
    refused(["-qmp", "stdio"], /unsupported monitor backend 'stdio'/);
    refused(["-action", "panic=explode"], /invalid value for action panic: 'explode'/);
    refused(["-action", "reboot"], /'reboot' needs a value/);
    refused(["-display", "gtk"], /only 'none'/);
    refused(["-machine", "virt"], /unsupported machine type 'virt'/);
    refused(["disk.img"], /unexpected argument/);
  });

  test("should accept extra options from an extension", () => {
    const line = parseQemuOptions(["-pidfile", "/tmp/p"], {
      extraOptions: {
        pidfile: {
          takesValue: true,
          help: "",
          apply: (l, v) => {
            l.extra.pidfile = [v];
          },
        },
      },
    });
    assert.deepEqual(line.extra, { pidfile: ["/tmp/p"] });
  });
});

suite("PCI and USB placement of non-migratable devices", () => {
  const unmigratable = (argv: string[]) =>
    parseQemuOptions(argv)
      .devices.filter((d) => d.unmigratable !== undefined)
      .map((d) => `${d.id} ${d.unmigratable}`);
  const usb = [
    "-device",
    "qemu-xhci,id=xhci",
    "-device",
    "usb-kbd,id=kbd",
    "-device",
    "usb-serial,chardev=c0,id=ser0",
    "-device",
    "usb-net,netdev=n0,id=un0,bus=xhci.0",
  ];
  test("should name them by controller slot, USB port and vmstate, as 7.2.22 does", () => {
    // 7.2.22: xhci in slot 2 with -nodefaults, 3 without (the default VGA takes 2).
    assert.deepEqual(unmigratable(["-M", "pc", "-nodefaults", ...usb]), [
      "ser0 0000:00:02.0/2/usb-serial",
      "un0 0000:00:02.0/3/usb-net",
    ]);
    assert.deepEqual(unmigratable([...usb, "-machine", "pc"]), [
      "ser0 0000:00:03.0/2/usb-serial",
      "un0 0000:00:03.0/3/usb-net",
    ]);
  });

  test("should skip slots given with addr= and place devices on the named bus", () => {
    const line = [
      "-M",
      "pc",
      "-nodefaults",
      "-device",
      "virtio-balloon-pci,addr=0x2",
      "-device",
      "qemu-xhci,id=a",
      "-device",
      "nec-usb-xhci,id=b,addr=0x7",
      "-device",
      "usb-net,netdev=n0,id=un0,bus=b.0",
      "-device",
      "usb-serial,id=s0",
    ];
    assert.deepEqual(unmigratable(line), [
      "un0 0000:00:07.0/1/usb-net",
      "s0 0000:00:03.0/1/usb-serial",
    ]);
    // No PCI bus on -machine none: nothing placed.
    assert.deepEqual(unmigratable(["-M", "none", ...usb]), []);
  });
});

suite("splitQemuOpts", () => {
  test("should split on commas with ,, as a literal comma", () => {
    assert.deepEqual(splitQemuOpts("unix:/a,,b,server=on,nowait"), [
      ["unix:/a,b", undefined],
      ["server", "on"],
      ["nowait", undefined],
    ]);
  });
});
