/** The simulated migration on a manual clock: statuses, query-migrate's members and numbers. */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { QmpReplyError } from "../../src/server/index.js";
import type { JsonObject, JsonValue } from "../../src/base/json.js";
import type { MigrationCapability, MigrationChannel } from "../../src/generated/index.js";
import type { SimDevicesOptions } from "../../src/sim/devices.js";
import type { MachineCoreOptions } from "../../src/sim/machine-core.js";
import { ManualClock } from "../../src/server/index.js";
import { migrationTarget } from "../../src/sim/migration.js";
import { SimulatedMachine } from "../../src/sim/simulated-machine.js";
import { qemuProfile } from "../../src/sim/versions.js";
import { migration } from "../../src/sim/modules/index.js";
import { moduleRig } from "./module-rig.js";

const MiB = 1024 * 1024;

function rig(devices: SimDevicesOptions, options: MachineCoreOptions & { version?: string } = {}) {
  const r = moduleRig(devices, options);
  r.dev.migration.setCapabilities([{ capability: "events", state: true }]);
  r.log.length = 0;
  return r;
}

const err = (cls: string, desc: string) => (e: unknown) =>
  e instanceof QmpReplyError && e.errorClass === cls && e.desc === desc;

const ram = (info: JsonObject) => info.ram as unknown as Stats;
const keys = (v: JsonValue | undefined) => Object.keys(v as JsonObject).sort();

/** The MigrationStats members of 7.2 (all of them, in every status that has `ram`). */
const STATS_7_2 = [
  "dirty-pages-rate",
  "dirty-sync-count",
  "dirty-sync-missed-zero-copy",
  "downtime-bytes",
  "duplicate",
  "mbps",
  "multifd-bytes",
  "normal",
  "normal-bytes",
  "page-size",
  "pages-per-second",
  "postcopy-bytes",
  "postcopy-requests",
  "precopy-bytes",
  "remaining",
  "skipped",
  "total",
  "transferred",
] as const;

type Stats = { [K in (typeof STATS_7_2)[number]]: number };

suite("query-migrate through a migration's statuses", () => {
  test("should answer {} before, status alone in setup, and the active members once active", () => {
    const { dev, clock } = rig({ memoryBytes: 16 * MiB, migrationBandwidth: 8192 });
    assert.deepEqual(dev.migration.query(), {});
    dev.migration.migrate("exec:cat");
    assert.deepEqual(dev.migration.query(), { status: "setup" });
    clock.advance(1);
    const info = dev.migration.query();
    assert.deepEqual(keys(info), [
      "expected-downtime",
      "ram",
      "setup-time",
      "status",
      "total-time",
    ]);
    assert.deepEqual(keys(info.ram), [...STATS_7_2]);
    assert.equal(info.status, "active");
    assert.equal(info["setup-time"], 1);
    assert.equal(info["expected-downtime"], 300);
  });

  test("should send more and leave less as the clock runs, at the migration bandwidth", () => {
    // -machine none -m 16 that never ran: 4096 zero pages of 9 bytes each on the wire.
    const { dev, clock } = rig(
      { memoryBytes: 16 * MiB, migrationBandwidth: 9000 },
      { startPaused: true },
    );
    dev.migration.migrate("exec:cat");
    clock.advance(1);
    const a = dev.migration.query();
    clock.advance(1000);
    const b = dev.migration.query();
    assert.equal(ram(a).total, 16 * MiB);
    assert.equal(ram(a).normal, 0);
    assert.equal(ram(a).transferred, ram(a).duplicate * 9);
    assert.equal(ram(a).remaining, 16 * MiB - ram(a).duplicate * 4096);
    assert.ok(ram(b).transferred > ram(a).transferred);
    assert.ok(ram(b).remaining < ram(a).remaining);
    // About one second of bandwidth went out between the two answers.
    const sent = ram(b).transferred - ram(a).transferred;
    assert.ok(sent >= 8000 && sent <= 10_000, `sent ${sent}`);
    assert.equal(Number(b["total-time"]) - Number(a["total-time"]), 1000);
    // Sent while the VM did not run (-S): downtime bytes, not pre-copy.
    assert.equal(ram(b)["downtime-bytes"], ram(b).transferred);
    assert.equal(ram(b)["precopy-bytes"], 0);
  });

  test("should complete with downtime, remaining 0, two passes and self-consistent counters", () => {
    const { core, dev, clock, log } = rig(
      { memoryBytes: 64 * MiB },
      { machine: "pc", startPaused: false },
    );
    dev.migration.migrate("exec:cat");
    const started = clock.nowMicros();
    clock.advance(1000);
    assert.deepEqual(log, [
      'MIGRATION {"status":"setup"}',
      'MIGRATION_PASS {"pass":1}',
      'MIGRATION {"status":"active"}',
      "STOP",
      'MIGRATION_PASS {"pass":2}',
      'MIGRATION {"status":"completed"}',
    ]);
    assert.equal(core.state, "postmigrate");
    const info = dev.migration.query();
    assert.deepEqual(keys(info), ["downtime", "ram", "setup-time", "status", "total-time"]);
    const r = ram(info);
    assert.deepEqual(keys(info.ram), [...STATS_7_2]);
    assert.equal(r.total, 64 * MiB + 130 * 4096);
    assert.equal(r.remaining, 0);
    assert.equal(r["dirty-sync-count"], 2);
    assert.equal(r.normal + r.duplicate, r.total / 4096);
    assert.equal(r["normal-bytes"], r.normal * 4096);
    // A guest that ran holds data in some pages; the device state (92 bytes on pc) at the end.
    assert.equal(r.normal, 49 + 32);
    assert.equal(r.transferred, r.normal * 4104 + r.duplicate * 9 + 92);
    assert.equal(r.transferred, r["precopy-bytes"] + r["downtime-bytes"]);
    assert.ok(r["precopy-bytes"] > 0, "the first pass went out while the guest ran");
    assert.ok(r.mbps > 0);
    // Times from the clock: the migration ended before the clock's last advance.
    const total = Number(info["total-time"]);
    assert.ok(total >= 1 && total <= (clock.nowMicros() - started) / 1000, `total ${total}`);
    assert.ok(Number(info.downtime) <= total);
    // Completed stays completed: later answers do not change.
    clock.advance(5000);
    assert.deepEqual(dev.migration.query(), info);
  });

  test("should answer cancelling like active, then cancelled alone, and leave the VM as it was", () => {
    const { core, dev, clock, log } = rig({ memoryBytes: 16 * MiB, migrationBandwidth: 8192 });
    dev.migration.migrate("tcp:127.0.0.1:4444");
    clock.advance(50);
    const active = dev.migration.query();
    dev.migration.cancel();
    const cancelling = dev.migration.query();
    assert.equal(cancelling.status, "cancelling");
    assert.deepEqual(keys(cancelling), keys(active));
    clock.advance(1000);
    assert.deepEqual(dev.migration.query(), { status: "cancelled" });
    assert.equal(core.state, "running");
    assert.deepEqual(log.slice(-2), [
      'MIGRATION {"status":"cancelling"}',
      'MIGRATION {"status":"cancelled"}',
    ]);
    assert.ok(!log.includes("STOP"));
  });

  test("should fail with error-desc, on stderr too, after active or before any pass", () => {
    const { dev, clock, log, stderr } = rig({
      memoryBytes: 16 * MiB,
      migrationFailure: (uri) =>
        uri === "exec:false"
          ? { phase: "transfer", desc: "Unable to write to command: Broken pipe" }
          : uri === "tcp:127.0.0.1:1"
            ? { phase: "connect", desc: "Failed to connect to '127.0.0.1:1': Connection refused" }
            : undefined,
    });
    dev.migration.migrate("exec:false");
    clock.advance(100);
    assert.deepEqual(dev.migration.query(), {
      status: "failed",
      "error-desc": "Unable to write to command: Broken pipe",
    });
    assert.deepEqual(log.splice(0), [
      'MIGRATION {"status":"setup"}',
      'MIGRATION_PASS {"pass":1}',
      'MIGRATION {"status":"active"}',
      'MIGRATION {"status":"failed"}',
    ]);
    dev.migration.migrate("tcp:127.0.0.1:1");
    clock.advance(100);
    assert.equal(
      dev.migration.query()["error-desc"],
      "Failed to connect to '127.0.0.1:1': Connection refused",
    );
    assert.deepEqual(log, ['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"failed"}']);
    assert.deepEqual(stderr, [
      "qemu-system-x86_64: Unable to write to command: Broken pipe\n",
      "qemu-system-x86_64: Failed to connect to '127.0.0.1:1': Connection refused\n",
    ]);
    // A bad URI fails without a reason.
    assert.throws(() => dev.migration.migrate("bogus:x"), /valid migration protocol/);
    assert.deepEqual(dev.migration.query(), { status: "failed" });
  });

  test("should refuse a second migration while one runs and after one completed", () => {
    const { dev, clock } = rig({}, { startPaused: true });
    dev.migration.migrate("exec:cat");
    const busy = err("GenericError", "There's a migration process in progress");
    assert.throws(() => dev.migration.migrate("exec:cat"), busy);
    assert.throws(
      () => dev.migration.setCapabilities([{ capability: "xbzrle", state: true }]),
      busy,
    );
    clock.advance(100);
    assert.throws(
      () => dev.migration.migrate("exec:cat"),
      err("GenericError", "Can't migrate the vm that was paused due to previous migration"),
    );
  });

  test("should add the xbzrle-cache block with xbzrle on, and drop members the release lacks", () => {
    const { dev, clock } = rig({ memoryBytes: 16 * MiB });
    dev.migration.setCapabilities([{ capability: "xbzrle", state: true }]);
    dev.migration.migrate("exec:cat");
    clock.advance(100);
    const info = dev.migration.query();
    assert.deepEqual(keys(info["xbzrle-cache"]), [
      "bytes",
      "cache-miss",
      "cache-miss-rate",
      "cache-size",
      "encoding-rate",
      "overflow",
      "pages",
    ]);
    // 10.2 has no `skipped` any more (removed in 9.1).
    const newer = rig({ memoryBytes: 16 * MiB }, { version: "10.2.0" });
    newer.dev.migration.migrate("exec:cat");
    newer.clock.advance(100);
    assert.equal(newer.dev.migration.query().status, "completed");
    assert.ok(!keys(newer.dev.migration.query().ram).includes("skipped"));
  });
});

suite("non-migratable devices", () => {
  test("should list them in blocked-reasons, newest first, refuse migrate, and unblock on unplug", () => {
    const { dev, clock, log } = rig({
      devices: [
        {
          id: "ser0",
          driver: "usb-serial",
          unplug: "host",
          unmigratable: "0000:00:02.0/1/usb-serial",
        },
        { id: "kbd", driver: "usb-kbd", unplug: "host" },
        { id: "un0", driver: "usb-net", unplug: "host", unmigratable: "0000:00:02.0/3/usb-net" },
      ],
    });
    assert.deepEqual(dev.migration.query(), {
      "blocked-reasons": [
        "non-migratable device: 0000:00:02.0/3/usb-net",
        "non-migratable device: 0000:00:02.0/1/usb-serial",
      ],
    });
    assert.throws(
      () => dev.migration.migrate("exec:cat"),
      err("GenericError", "State blocked by non-migratable device '0000:00:02.0/1/usb-serial'"),
    );
    assert.deepEqual(log, [], "no MIGRATION setup for a refused migrate");
    dev.qdev.deviceDel("ser0");
    clock.advance(1);
    assert.throws(() => dev.migration.migrate("exec:cat"), /usb-net/);
    dev.qdev.deviceDel("un0");
    clock.advance(1);
    assert.deepEqual(dev.migration.query(), {});
    dev.migration.migrate("exec:cat");
    clock.advance(100);
    assert.equal(dev.migration.query().status, "completed");
  });
});

suite("x-sim-inject MIGRATION on a source", () => {
  test("should fail the running migration (no error-desc) and resume a VM stopped for it", () => {
    const clock = new ManualClock();
    const vm = new SimulatedMachine({
      clock,
      machine: "pc",
      devices: { memoryBytes: 16 * MiB, migrationBandwidth: 8192 },
    });
    try {
      vm.modules.get(migration).migrate("exec:cat");
      clock.advance(10);
      assert.equal(vm.modules.get(migration).query().status, "active");
      vm.hostSide.inject("MIGRATION", { status: "failed" });
      assert.deepEqual(vm.modules.get(migration).query(), { status: "failed" });
      assert.equal(vm.state, "running");
      // Without a running migration the event is only sent.
      vm.hostSide.inject("MIGRATION", { status: "failed" });
      assert.deepEqual(vm.modules.get(migration).query(), { status: "failed" });
    } finally {
      void vm.close();
    }
  });
});

suite("migration parameters", () => {
  test("should start from QEMU's defaults, as the release has them", () => {
    const old = rig({}).dev.migration.queryParameters();
    assert.equal(old["max-bandwidth"], 134217728);
    assert.equal(old["downtime-limit"], 300);
    assert.equal(old["compress-level"], 1);
    assert.ok(!("mode" in old) && !("block-bitmap-mapping" in old));
    const newer = rig({}, { version: "10.0.2" }).dev.migration.queryParameters();
    assert.equal(newer.mode, "normal");
    assert.ok(!("compress-level" in newer) && !("block-incremental" in newer));
    assert.equal(
      rig({ migrationBandwidth: 8192 }).dev.migration.queryParameters()["max-bandwidth"],
      8192,
    );
  });

  test("should refuse the first bad merged value with QEMU's words and then change nothing", () => {
    const m = rig({}).dev.migration;
    assert.throws(
      () => m.setParameters({ "max-bandwidth": 1, "cpu-throttle-initial": 0 }),
      err(
        "GenericError",
        "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99",
      ),
    );
    assert.equal(m.queryParameters()["max-bandwidth"], 134217728);
    // Checked against the merged values: a lower max-cpu-throttle than the initial step fails.
    m.setParameters({ "cpu-throttle-initial": 50 });
    assert.throws(() => m.setParameters({ "max-cpu-throttle": 40 }), /cpu_throttle_initial to 99/);
    m.setParameters({ "tls-creds": null, "tls-hostname": "h" });
    assert.equal(m.queryParameters()["tls-creds"], "");
    assert.equal(m.queryParameters()["tls-hostname"], "h");
  });

  test("should ignore the multifd levels before 9.0 and apply them from 9.0", () => {
    const old = rig({}).dev.migration;
    old.setParameters({ "multifd-zstd-level": 21 });
    assert.equal(old.queryParameters()["multifd-zstd-level"], 1);
    const newer = rig({}, { version: "10.0.2" }).dev.migration;
    assert.throws(() => newer.setParameters({ "multifd-zstd-level": 21 }), /between 0 and 20/);
    newer.setParameters({ "multifd-zstd-level": 3 });
    assert.equal(newer.queryParameters()["multifd-zstd-level"], 3);
  });

  test("should speed a running migration up when max-bandwidth grows, and use downtime-limit", () => {
    const { dev, clock } = rig({ memoryBytes: 16 * MiB }, { startPaused: true });
    dev.migration.setParameters({ "max-bandwidth": 9000, "downtime-limit": 50 });
    dev.migration.setCapabilities([{ capability: "xbzrle", state: true }]);
    dev.migration.setParameters({ "xbzrle-cache-size": 8192 });
    dev.migration.migrate("exec:cat");
    clock.advance(1000);
    const slow = dev.migration.query();
    assert.equal(slow.status, "active");
    assert.equal(slow["expected-downtime"], 50);
    assert.equal((slow["xbzrle-cache"] as JsonObject)["cache-size"], 8192);
    dev.migration.setParameters({ "max-bandwidth": 0 }); // no limit
    clock.advance(1000);
    assert.equal(dev.migration.query().status, "completed");
  });
});

suite("pause-before-switchover", () => {
  test("should stop in pre-switchover until migrate-continue, counting downtime from the stop", () => {
    const { core, dev, clock, log } = rig({ memoryBytes: 16 * MiB });
    dev.migration.setCapabilities([{ capability: "pause-before-switchover", state: true }]);
    assert.throws(
      () => dev.migration.continue("pre-switchover"),
      err("GenericError", "Migration not in expected state: none"),
    );
    dev.migration.migrate("exec:cat");
    clock.advance(100);
    assert.equal(dev.migration.query().status, "pre-switchover");
    assert.equal(core.state, "finish-migrate");
    assert.throws(
      () => dev.migration.continue("active"),
      err("GenericError", "Migration not in expected state: pre-switchover"),
    );
    clock.advance(500);
    dev.migration.continue("pre-switchover");
    clock.advance(100);
    assert.deepEqual(log.slice(2), [
      'MIGRATION {"status":"active"}',
      "STOP",
      'MIGRATION {"status":"pre-switchover"}',
      'MIGRATION {"status":"device"}',
      'MIGRATION_PASS {"pass":2}',
      'MIGRATION {"status":"completed"}',
    ]);
    assert.ok(Number(dev.migration.query().downtime) >= 500);
    assert.equal(core.state, "postmigrate");
  });

  test("should resume the VM when cancelled in pre-switchover, and refuse resume", () => {
    const { core, dev, clock, log } = rig({ memoryBytes: 16 * MiB });
    dev.migration.setCapabilities([{ capability: "pause-before-switchover", state: true }]);
    dev.migration.migrate("exec:cat");
    clock.advance(100);
    dev.migration.cancel();
    assert.deepEqual(log.slice(-3), [
      'MIGRATION {"status":"cancelling"}',
      "RESUME",
      'MIGRATION {"status":"cancelled"}',
    ]);
    assert.equal(core.state, "running");
    assert.throws(
      () => dev.migration.migrate("exec:cat", { resume: true }),
      err("GenericError", "Cannot resume if there is no paused migration"),
    );
  });
});

suite("the course of a migration in 10.0", () => {
  test("should pass through device after STOP at the switch-over", () => {
    const { dev, clock, log } = rig({ memoryBytes: 16 * MiB }, { version: "10.0.2" });
    dev.migration.migrate("exec:cat");
    clock.advance(1000);
    assert.deepEqual(log, [
      'MIGRATION {"status":"setup"}',
      'MIGRATION_PASS {"pass":1}',
      'MIGRATION {"status":"active"}',
      "STOP",
      'MIGRATION {"status":"device"}',
      'MIGRATION_PASS {"pass":2}',
      'MIGRATION {"status":"completed"}',
    ]);
    // 7.2 has no device status.
    const old = rig({ memoryBytes: 16 * MiB });
    old.dev.migration.migrate("exec:cat");
    old.clock.advance(1000);
    assert.ok(!old.log.some((l) => l.includes("device")));
  });

  test("should refuse a bad URI before anything starts, and report a listener as setup", () => {
    const { dev, log } = rig({}, { version: "10.0.2" });
    assert.throws(
      () => dev.migration.migrate("bogus:x"),
      err("GenericError", "unknown migration protocol: bogus:x"),
    );
    assert.deepEqual(log, []);
    assert.deepEqual(dev.migration.query(), {});
    dev.migration.listen("unix:/tmp/in.sock");
    assert.deepEqual(dev.migration.query(), {
      status: "setup",
      "socket-address": [{ type: "unix", path: "/tmp/in.sock" }],
    });
  });
});

suite("migrate to an address QEMU cannot use", () => {
  // Each seen on QEMU 7.2.22 and 10.0.2 (and in the differential fuzz); the simulator started
  // a migration to every one of them.
  const cases: Array<[string, string, string | undefined]> = [
    // [uri, 7.2.22's answer (after MIGRATION setup, failed), 10.0.2's (before anything; undefined: as 7.2 after setup)]
    ["tcp:", "error parsing address ''", "error parsing address ''"],
    ["tcp:host", "error parsing address 'host'", "error parsing address 'host'"],
    ["tcp::", "error parsing port in address ':'", "error parsing port in address ':'"],
    ["tcp:[::1]", "error parsing IPv6 address '[::1]'", "error parsing IPv6 address '[::1]'"],
    ["tcp:h:1,to=5x", "error parsing to= argument", "error parsing to= argument"],
    ["tcp:h:1,ipv4=yes", "error parsing 'ipv4' flag '=yes'", "error parsing 'ipv4' flag '=yes'"],
    ["unix:", "invalid Unix socket address", "invalid Unix socket address"],
    ["vsock:x", "error parsing address 'x'", "error parsing address 'x'"],
    [
      "vsock:1:2,x",
      "trailing characters in address '1:2,x'",
      "trailing characters in address '1:2,x'",
    ],
    ["fd:", "File descriptor named '' has not been found", "invalid file descriptor address"],
    ["fd:mig", "File descriptor named 'mig' has not been found", undefined],
    ["rdma:", "RDMA ERROR: bad RDMA migration address ''", "error parsing address ''"],
  ];

  test("should fail in setup with error-desc as 7.2.22 does (migrate_fd_error)", () => {
    for (const [uri, desc] of cases) {
      const { dev, log, stderr } = rig({ memoryBytes: 16 * MiB });
      assert.throws(() => dev.migration.migrate(uri), err("GenericError", desc), uri);
      assert.deepEqual(log, ['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"failed"}'], uri);
      assert.deepEqual(dev.migration.query(), { status: "failed", "error-desc": desc }, uri);
      // Only RDMA says it on stderr too (its ERROR macro).
      assert.deepEqual(stderr, uri.startsWith("rdma:") ? [`${desc}\n`] : [], uri);
    }
  });

  test("should refuse most of them before anything starts as 10.0.2 does (migrate_uri_parse)", () => {
    for (const [uri, desc72, desc10] of cases) {
      const { dev, log } = rig({ memoryBytes: 16 * MiB }, { version: "10.0.2" });
      const desc = desc10 ?? desc72;
      assert.throws(() => dev.migration.migrate(uri), err("GenericError", desc), uri);
      if (desc10 === undefined) {
        assert.deepEqual(log, ['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"failed"}']);
        assert.deepEqual(dev.migration.query(), { status: "failed", "error-desc": desc });
      } else {
        assert.deepEqual(log, [], uri);
        assert.deepEqual(dev.migration.query(), {}, uri);
      }
    }
    const { dev } = rig({}, { version: "10.0.2" });
    assert.throws(
      () => dev.migration.migrate("file:/nonexistent-qmpkit/x"),
      err("GenericError", "Could not create '/nonexistent-qmpkit/x': No such file or directory"),
    );
    assert.throws(
      () => dev.migration.migrate("file:/tmp/x,offset=y"),
      err("GenericError", "file URI has bad offset y: Invalid argument"),
    );
  });

  test("should turn block migration on for blk/inc, off on a bad protocol, and keep it on a bad address (7.2.22)", () => {
    const { dev } = rig({});
    const block = () =>
      [
        dev.migration.capability("block"),
        dev.migration.queryParameters()["block-incremental"],
      ] as const;
    assert.throws(() => dev.migration.migrate("tcp:", { inc: true }), /error parsing address/);
    assert.deepEqual(block(), [true, true]);
    assert.throws(
      () => dev.migration.migrate("tcp:", { blk: true }),
      err("GenericError", "Command options are incompatible with current migration capabilities"),
    );
    // block_cleanup_parameters on an unknown protocol, even for a migrate without blk.
    assert.throws(() => dev.migration.migrate("bogus:"), /a valid migration protocol/);
    assert.deepEqual(block(), [false, false]);
  });

  test("should answer migrate-continue for the state the migration is in, even none", () => {
    for (const version of ["7.2.22", "10.0.2"]) {
      const { dev } = rig({}, { version });
      dev.migration.continue("none");
      assert.throws(
        () => dev.migration.continue("active"),
        err("GenericError", "Migration not in expected state: none"),
      );
    }
  });
});

suite("migration capabilities", () => {
  test("should refuse what 7.2.22 and 10.0.2 refuse beside background-snapshot, switchover-ack and dirty-limit", () => {
    const cases: Array<[string, Array<[MigrationCapability, boolean]>, string]> = [
      [
        "7.2.22",
        [
          ["background-snapshot", true],
          ["pause-before-switchover", true],
        ],
        "Background-snapshot is not compatible with pause-before-switchover",
      ],
      [
        "10.0.2",
        [
          ["xbzrle", true],
          ["background-snapshot", true],
        ],
        "Background-snapshot is not compatible with xbzrle",
      ],
      [
        "10.0.2",
        [["switchover-ack", true]],
        "Capability 'switchover-ack' requires capability 'return-path'",
      ],
      [
        "10.0.2",
        [["dirty-limit", true]],
        "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set",
      ],
    ];
    for (const [version, caps, desc] of cases) {
      const { dev } = rig({}, { version });
      assert.throws(
        () =>
          dev.migration.setCapabilities(caps.map(([capability, state]) => ({ capability, state }))),
        err("GenericError", desc),
        desc,
      );
      assert.equal(dev.migration.capability(caps[0]![0]), false);
    }
    const { dev } = rig({}, { version: "10.0.2" });
    dev.migration.setCapabilities([
      { capability: "return-path", state: true },
      { capability: "switchover-ack", state: true },
    ]);
    assert.equal(dev.migration.capability("switchover-ack"), true);
  });

  test("should take a negative uint64 parameter as 2^64 less it, and range-check that", () => {
    for (const version of ["7.2.22", "10.0.2"]) {
      const { dev } = rig({}, { version });
      const set = (a: JsonObject) => dev.migration.setParameters(a);
      assert.throws(
        () => set({ "downtime-limit": -1 }),
        err(
          "GenericError",
          "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
        ),
      );
      assert.throws(
        () => set({ "xbzrle-cache-size": -1 }),
        err(
          "GenericError",
          "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size",
        ),
      );
      assert.throws(
        () => set({ "announce-step": -(2n ** 63n) }),
        err("GenericError", "Parameter 'announce_step' expects a value between 0 and 10000"),
      );
      assert.throws(() => set({ "downtime-limit": 2n ** 64n - 1n }), /downtime_limit/);
      set({ "max-bandwidth": -1 });
      assert.equal(dev.migration.queryParameters()["max-bandwidth"], 2n ** 64n - 1n);
    }
  });

  test("should warn on stderr at each set while zero-blocks is on, from 10.0", () => {
    for (const [version, warnings] of [
      ["7.2.22", 0],
      ["10.0.2", 2],
    ] as const) {
      const { dev, stderr } = rig({}, { version });
      dev.migration.setCapabilities([{ capability: "zero-blocks", state: true }]);
      dev.migration.setCapabilities([{ capability: "events", state: true }]);
      dev.migration.setCapabilities([{ capability: "zero-blocks", state: false }]);
      dev.migration.setCapabilities([{ capability: "events", state: true }]);
      assert.deepEqual(
        stderr,
        Array(warnings).fill("warning: zero-blocks capability is deprecated\n"),
        version,
      );
    }
  });

  test("should list the release's capabilities in enum order with their state", () => {
    const { dev } = rig({});
    const caps = dev.migration.queryCapabilities() as Array<{ capability: string; state: boolean }>;
    assert.equal(caps.length, 21);
    assert.deepEqual(caps[0], { capability: "xbzrle", state: false });
    assert.deepEqual(
      caps.find((c) => c.capability === "events"),
      { capability: "events", state: true },
    );
    assert.ok(!caps.some((c) => c.capability === "switchover-ack" || c.capability === "x-multifd"));
    const newer = rig({}, { version: "10.2.0" });
    const names = (newer.dev.migration.queryCapabilities() as Array<{ capability: string }>).map(
      (c) => c.capability,
    );
    assert.ok(names.includes("switchover-ack") && names.includes("mapped-ram"));
    assert.ok(!names.includes("compress") && !names.includes("block"));
  });

  test("should refuse the combinations QEMU refuses and then change nothing", () => {
    const { dev } = rig({});
    assert.throws(
      () =>
        dev.migration.setCapabilities([
          { capability: "xbzrle", state: true },
          { capability: "postcopy-preempt", state: true },
        ]),
      err("GenericError", "Postcopy preempt requires postcopy-ram"),
    );
    assert.equal(dev.migration.capability("xbzrle"), false);
    assert.throws(
      () => dev.migration.setCapabilities([{ capability: "zero-copy-send", state: true }]),
      /Zero copy only available/,
    );
  });
});

suite("the destination side", () => {
  test("should report the listening addresses, then the incoming status", () => {
    const { dev } = rig({}, { incoming: true });
    dev.migration.listen("tcp:127.0.0.1:4444");
    assert.deepEqual(dev.migration.query(), {
      "socket-address": [{ type: "inet", host: "127.0.0.1", port: "4444", ipv4: true }],
    });
    dev.migration.listen("tcp::0");
    const both = dev.migration.query()["socket-address"] as JsonObject[];
    assert.deepEqual(
      both.map((a) => a.host),
      ["::", "0.0.0.0"],
    );
    assert.notEqual(both[0]?.port, "0");
    dev.migration.listen("unix:/tmp/in.sock");
    assert.deepEqual(dev.migration.query(), {
      "socket-address": [{ type: "unix", path: "/tmp/in.sock" }],
    });
    dev.migration.incomingStatus("completed");
    assert.deepEqual(dev.migration.query(), { status: "completed" });
  });
});

suite("the migration's yank instance", () => {
  test("should be listed while an outgoing migration runs, and not before or after", () => {
    const { dev, clock } = rig({ memoryBytes: 16 * MiB, migrationBandwidth: 8192 });
    assert.equal(dev.migration.yankable, false);
    dev.migration.migrate("exec:cat");
    assert.equal(dev.migration.yankable, true);
    clock.advance(1);
    assert.equal(dev.migration.status, "active");
    assert.equal(dev.migration.yankable, true);
    dev.migration.cancel();
    clock.advance(1_000);
    assert.equal(dev.migration.status, "cancelled");
    assert.equal(dev.migration.yankable, false);
  });

  test("should break a migration over a socket and leave one into a command running", () => {
    const socket = rig({ memoryBytes: 16 * MiB, migrationBandwidth: 8192 });
    socket.dev.migration.migrate("tcp:127.0.0.1:4444");
    socket.clock.advance(1);
    socket.log.length = 0;
    socket.dev.migration.yank();
    // The migration thread notices at its next write, after the reply.
    assert.equal(socket.dev.migration.status, "active");
    socket.clock.advance(1_000);
    assert.equal(socket.dev.migration.status, "failed");
    assert.deepEqual(socket.log, ['MIGRATION {"status":"failed"}']);
    assert.deepEqual(socket.dev.migration.query(), {
      status: "failed",
      "error-desc": "Unable to write to socket: Broken pipe",
    });
    assert.equal(socket.dev.migration.yankable, false);

    const exec = rig({ memoryBytes: 16 * MiB, migrationBandwidth: 8192 });
    exec.dev.migration.migrate("exec:cat");
    exec.clock.advance(1);
    exec.dev.migration.yank();
    assert.equal(exec.dev.migration.status, "active");
  });

  test("should fail a yanked migration paused before the switch-over only once it goes on", () => {
    for (const [version, desc, state] of [
      ["7.2.22", undefined, "postmigrate"],
      ["10.0.2", "Unable to write to socket: Broken pipe", "prelaunch"],
    ] as const) {
      const { core, dev, clock, log } = rig(
        { memoryBytes: 16 * MiB, migrationBandwidth: 1 << 30 },
        { startPaused: true, version },
      );
      dev.migration.setCapabilities([{ capability: "pause-before-switchover", state: true }]);
      dev.migration.migrate("unix:/run/dest.sock");
      clock.advance(1_000);
      assert.equal(dev.migration.status, "pre-switchover", version);
      dev.migration.yank();
      clock.advance(1_000);
      assert.equal(dev.migration.status, "pre-switchover", version);
      assert.equal(dev.migration.yankable, true);
      log.length = 0;
      dev.migration.continue("pre-switchover");
      clock.advance(1_000);
      assert.deepEqual(
        log.filter((l) => l.startsWith("MIGRATION")).map((l) => l.replace(/\d+/, "N")),
        [
          'MIGRATION {"status":"device"}',
          'MIGRATION_PASS {"pass":N}',
          'MIGRATION {"status":"failed"}',
        ],
        version,
      );
      assert.deepEqual(
        dev.migration.query(),
        desc === undefined ? { status: "failed" } : { status: "failed", "error-desc": desc },
      );
      assert.equal(core.state, state, version);
    }
  });

  test("should be listed while the destination listens, until the incoming migration ends", () => {
    const { dev } = rig({}, { incoming: true });
    assert.equal(dev.migration.yankable, false);
    dev.migration.listen("tcp:127.0.0.1:0");
    assert.equal(dev.migration.yankable, true);
    dev.migration.yank();
    assert.equal(dev.migration.yankable, true);
    dev.migration.incomingStatus("completed");
    assert.equal(dev.migration.yankable, false);
  });
});

suite("migrate and migrate-incoming with channels (8.2+, 9.0+)", () => {
  const v10 = qemuProfile("10.0.2").version;
  const v82 = qemuProfile("8.2.0").version;
  const v91 = qemuProfile("9.1.0").version;
  const channel = (addr: JsonObject, type = "main") =>
    ({ "channel-type": type, addr }) as unknown as MigrationChannel;

  test("should take the channel's address as the URI that says the same", () => {
    const cases: [JsonObject, string][] = [
      [
        { transport: "socket", type: "inet", host: "192.0.2.1", port: "4446" },
        "tcp:192.0.2.1:4446",
      ],
      [{ transport: "socket", type: "unix", path: "/run/m.sock" }, "unix:/run/m.sock"],
      [{ transport: "socket", type: "vsock", cid: "3", port: "9" }, "vsock:3:9"],
      [{ transport: "socket", type: "fd", str: "mig" }, "fd:mig"],
      [{ transport: "exec", args: ["gzip", "-c"] }, "exec:gzip -c"],
      [{ transport: "rdma", host: "h", port: "1" }, "rdma:h:1"],
      [{ transport: "file", filename: "/tmp/x", offset: 4096 }, "file:/tmp/x,offset=4096"],
    ];
    for (const [addr, uri] of cases) {
      assert.equal(migrationTarget("migrate", { channels: [channel(addr)] }, v10), uri);
    }
    assert.equal(migrationTarget("migrate", { uri: "exec:cat", channels: [] }, v10), "exec:cat");
  });

  test("should refuse what QEMU refuses, in its words for the release", () => {
    const exec = channel({ transport: "exec", args: ["cat"] });
    const refused = (fn: () => unknown, desc: string) =>
      assert.throws(fn, err("GenericError", desc));
    refused(() => migrationTarget("migrate", {}, v10), "need either 'uri' or 'channels' argument");
    refused(
      () => migrationTarget("migrate", { uri: "exec:cat", channels: [exec] }, v10),
      "need either 'uri' or 'channels' argument",
    );
    refused(
      () => migrationTarget("migrate", { channels: [exec, exec] }, v10),
      "Channel list has more than one main entry",
    );
    refused(
      () =>
        migrationTarget(
          "migrate",
          { channels: [channel({ transport: "exec", args: [] }, "cpr")] },
          v10,
        ),
      "Channel list has no main entry",
    );
    refused(
      () => migrationTarget("migrate-incoming", { channels: [exec, exec] }, v10),
      "Channel list must have only one entry, for type 'main'",
    );
    refused(
      () => migrationTarget("migrate", { channels: [exec, exec] }, v91),
      "Channel list has more than one entries",
    );
    refused(
      () => migrationTarget("migrate-incoming", {}, v91),
      "need either 'uri' or 'channels' argument",
    );
    // 8.2 worded the first checks per command, and took an empty list as given.
    refused(
      () => migrationTarget("migrate-incoming", { uri: "tcp:h:1", channels: [] }, v82),
      "'uri' and 'channels' arguments are mutually exclusive; exactly one of the two should be present in 'migrate-incoming' qmp command ",
    );
    refused(
      () => migrationTarget("migrate", { channels: [] }, v82),
      "neither 'uri' or 'channels' argument are specified in 'migrate' qmp command ",
    );
    assert.equal(migrationTarget("migrate-incoming", { channels: [exec] }, v82), "exec:cat");
  });
});
