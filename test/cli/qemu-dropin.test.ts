import assert from "node:assert/strict";
import { suite, test } from "node:test";
import {
  DROP_IN_OPTIONS,
  hasDropInMonitors,
  parseChardev,
  resolveDropIn,
} from "../../src/cli/qemu-dropin.js";
import { parseQemuOptions } from "../../src/sim/index.js";

const parse = (argv: string[]) => parseQemuOptions(argv, { extraOptions: DROP_IN_OPTIONS });

suite("drop-in QEMU options", () => {
  test("should read the socket chardev forms", () => {
    assert.deepEqual(parseChardev("-chardev", "socket,id=m,path=/run/m.sock,server=on,wait=off"), {
      id: "m",
      kind: "listen",
      target: "unix:/run/m.sock",
    });
    assert.deepEqual(
      parseChardev("-chardev", "socket,id=m,host=127.0.0.1,port=4444,server=on,nowait"),
      {
        id: "m",
        kind: "listen",
        target: "tcp:127.0.0.1:4444",
      },
    );
    assert.deepEqual(parseChardev("-chardev", "socket,id=m,fd=7"), {
      id: "m",
      kind: "fd",
      fd: 7,
      server: false,
    });
    assert.deepEqual(parseChardev("-chardev", "socket,id=m,path=/h.sock"), {
      id: "m",
      kind: "connect",
      target: "unix:/h.sock",
    });
  });

  test("should refuse what it cannot do, naming the option", () => {
    assert.throws(
      () => parseChardev("-chardev", "pty,id=m"),
      /-chardev: chardev backend 'pty' is not simulated/,
    );
    assert.throws(() => parseChardev("-chardev", "socket,path=/x"), /Parameter 'id' is missing/);
    assert.throws(() => parseChardev("-chardev", "socket,id=m,path=/x,server=on"), /add wait=off/);
    assert.throws(
      () => parseChardev("-chardev", "socket,id=m,fd=1"),
      /invalid file descriptor '1'/,
    );
    assert.throws(
      () => parseChardev("-chardev", "socket,id=m,bogus=1,path=/x"),
      /Invalid parameter 'bogus'/,
    );
    assert.throws(
      () => parse(["-mon", "chardev=m,mode=readline"]),
      /the human monitor is not simulated/,
    );
    assert.throws(
      () => parse(["-chardev", "socket,id=m,fd=3", "-chardev", "socket,id=m,fd=4"]),
      /Duplicate ID 'm'/,
    );
    assert.throws(
      () => resolveDropIn(parse(["-mon", "chardev=nope,mode=control"])),
      /chardev "nope" not found/,
    );
  });

  test("should turn -chardev/-mon pairs into monitors, in either order", () => {
    const line = parse([
      "-mon",
      "chardev=late,mode=control,pretty=on",
      "-chardev",
      "socket,id=early,path=/a.sock,server=on,wait=off",
      "-mon",
      "chardev=early,mode=control",
      "-chardev",
      "socket,id=late,path=/b.sock,server=on,wait=off",
      "-chardev",
      "socket,id=fd,fd=5",
      "-mon",
      "chardev=fd,mode=control",
      "-chardev",
      "socket,id=serial0,path=/serial.sock,server=on,wait=off",
      "-pidfile",
      "/run/q.pid",
      "-daemonize",
      "-display",
      "none",
      "-vga",
      "none",
      "-smp",
      "4",
    ]);
    assert.deepEqual(line.monitors, [
      { target: "unix:/a.sock", chardev: "early" },
      { target: "unix:/b.sock", pretty: true, chardev: "late" },
    ]);
    assert.ok(hasDropInMonitors(line));
    assert.deepEqual(resolveDropIn(line), {
      fdMonitors: [{ id: "fd", fd: 5, server: false, pretty: false }],
      connectMonitors: [],
      pidfile: "/run/q.pid",
      daemonize: true,
    });
  });

  test("should keep chardev monitors where their -chardev stands among -qmp ones (QEMU's creation order)", () => {
    const line = parse([
      "-qmp",
      "unix:/q0.sock,server=on,wait=off",
      "-chardev",
      "socket,id=m,path=/m.sock,server=on,wait=off",
      "-qmp",
      "unix:/q1.sock,server=on,wait=off",
      "-mon",
      "chardev=m,mode=control",
    ]);
    assert.deepEqual(
      line.monitors.map((m) => m.target),
      ["unix:/q0.sock", "unix:/m.sock", "unix:/q1.sock"],
    );
  });
});
