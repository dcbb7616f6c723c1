/**
 * The differential conformance suite for two device behaviours a real guest completes, on QEMU
 * 7.2.22 and 10.0.2 against the simulator's matching profiles:
 *
 * - BALLOON_CHANGE (`-device virtio-balloon-pci`): QEMU emits it when the guest writes a new
 *   `actual` into the balloon's configuration space, in bytes, the RAM size less `actual` 4 KiB
 *   pages (hw/virtio/virtio-balloon.c, set_config; no DRIVER_OK status is needed, as seen on
 *   both versions). It is throttled (§2.1): a storm of three sizes shows the first at once and
 *   the last held for a second; `balloon` with a guest driver that follows `num_pages` shows the
 *   reply, then the event.
 * - PCI hot-unplug on `-machine pc` (PIIX4 ACPI PCI hotplug, hw/acpi/pcihp.c): `device_del`
 *   only raises the request (the slot's bit in the "down" register, 0xae04); QEMU unplugs the
 *   device when the guest writes that bit to the eject register (0xae08), as an OS's `_EJ0` does.
 *   Then DEVICE_DELETED, after the reply: for a virtio proxy first its `virtio-backend` child
 *   (no id), then the device. Both versions behave the same (10.0's `pc` machine still uses ACPI
 *   PCI hotplug on the root bus).
 *
 * The guests are `balloon-storm`, `balloon-driver`, `pci-unplug-ack` and `pci-eject-slot6`
 * (test/support/guests).
 * Also: `query-rx-filter` answers only for virtio-net (an `e1000` is refused by name and left
 * out of the list), its default MAC counting every NIC; a system reset carries out a pending
 * unplug the guest never acknowledged; `balloon` asks for whole pages and a driver's unchanged report makes no event; a
 * repeated `device_del` is refused only if the first came before the guest ran a millisecond of
 * virtual time (the pending unplug expires at once, hw/acpi/pcihp.c; 7.2.22 has that fix too).
 * These scenarios depend on host timing (the throttle's second), so they run one at a time.
 */
import { after, describe, test } from "node:test";
import { DifferentialHarness } from "../support/differential.js";
import { QEMU_10 } from "../support/real-qemu.js";
import type { Scenario, ScenarioStep } from "../support/scenario.js";

// ------------------------------------------------------------------ building blocks

function exec(name: string, args?: string): string {
  return args === undefined
    ? `{"execute": "${name}"}`
    : `{"execute": "${name}", "arguments": ${args}}`;
}

function send(name: string, args?: string): ScenarioStep {
  return { do: "command", text: exec(name, args) };
}

function sent(name: string, args?: string): string {
  return `>>> ${exec(name, args)}`;
}

function ev(name: string, data: string): string {
  return `<<< {"timestamp": <ts>, "event": "${name}", "data": ${data}}`;
}

const RETURN = '<<< {"return": {}}';
const CONT = [sent("cont"), ev("RESUME", "").replace(', "data": ', ""), RETURN];

/** The final `query-status` of the runner: `singlestep` only before 9.0 (§3.3). */
function finalStatus(state: string, on10: boolean): string[] {
  const running = state === "running";
  return [
    sent("query-status"),
    on10
      ? `<<< {"return": {"status": "${state}", "running": ${running}}}`
      : `<<< {"return": {"status": "${state}", "singlestep": false, "running": ${running}}}`,
  ];
}

const MIB = 1024 * 1024;
/** `-m` default of `pc`: 128 MiB (the balloon's size while the guest has taken nothing). */
const RAM = 128 * MIB;
/** BALLOON_CHANGE's `actual` when the guest reports `pages` 4 KiB pages in the balloon. */
const actualFor = (pages: number) => RAM - pages * 4096;

const balloonChange = (actual: number) => ev("BALLOON_CHANGE", `{"actual": ${actual}}`);
const queryBalloon = (actual: number) => [
  sent("query-balloon"),
  `<<< {"return": {"actual": ${actual}}}`,
];

const NO_BALLOON =
  '<<< {"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}';

/**
 * virtio-net's filter before the guest touched it, as QEMU prints it: the second NIC created,
 * so the default MAC's last byte is 0x57; every VLAN allowed (the table lists 4095 down to 0).
 */
const RX_FILTER_N1 = [
  '{"promiscuous": true, "name": "n1", "main-mac": "52:54:00:12:34:57", "unicast": "normal", "vlan": "all", ',
  `"vlan-table": [${Array.from({ length: 4096 }, (_, i) => 4095 - i).join(", ")}], `,
  '"unicast-table": [], "multicast": "normal", "multicast-overflow": false, ',
  '"unicast-overflow": false, "multicast-table": [], "broadcast-allowed": false}',
].join("");

// ------------------------------------------------------------------ scenarios

function scenarios(on10: boolean): Scenario[] {
  const BALLOON = ["-device", "virtio-balloon-pci"];
  return [
    {
      name: "balloon storm from the guest: BALLOON_CHANGE at once, the last of the second held",
      reference: "§2.1 BALLOON_CHANGE throttled; §2.2; hw/virtio/virtio-balloon.c set_config",
      guest: "balloon-storm",
      options: BALLOON,
      steps: [
        send("query-balloon"),
        send("cont"),
        // The guest reports 256, 512, then 768 pages within microseconds.
        ...[256, 512, 768].map(
          (pages): ScenarioStep => ({
            do: "guest",
            action: "balloon-change",
            args: { actual: actualFor(pages) },
          }),
        ),
        { do: "until-event", event: "BALLOON_CHANGE", count: 2 },
        send("query-balloon"),
        // A reset leaves the balloon's size as the guest last reported it.
        send("system_reset"),
        send("query-balloon"),
      ],
      expect: [
        ...queryBalloon(RAM),
        ...CONT,
        `${balloonChange(actualFor(256))} [+0s]`,
        `${balloonChange(actualFor(768))} [+1s] [held]`,
        ...queryBalloon(actualFor(768)),
        sent("system_reset"),
        ev("RESET", '{"guest": false, "reason": "host-qmp-system-reset"}'),
        RETURN,
        ...queryBalloon(actualFor(768)),
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "balloon twice with a guest driver: each reply, then BALLOON_CHANGE; the second held",
      reference: "issue 4 §2 balloon → BALLOON_CHANGE; §2.1 throttled",
      guest: "balloon-driver",
      options: BALLOON,
      steps: [
        send("cont"),
        send("balloon", `{"value": ${64 * MIB}}`),
        { do: "until-event", event: "BALLOON_CHANGE" },
        send("balloon", `{"value": ${96 * MIB}}`),
        { do: "until-event", event: "BALLOON_CHANGE", count: 2 },
        send("query-balloon"),
      ],
      expect: [
        ...CONT,
        sent("balloon", `{"value": ${64 * MIB}}`),
        RETURN,
        `${balloonChange(64 * MIB)} [+0s]`,
        sent("balloon", `{"value": ${96 * MIB}}`),
        RETURN,
        `${balloonChange(96 * MIB)} [+1s] [held]`,
        ...queryBalloon(96 * MIB),
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "balloon in prelaunch: the reply at once, BALLOON_CHANGE only once the guest runs",
      reference: "issue 4 §2 balloon → BALLOON_CHANGE (needs the guest driver)",
      guest: "balloon-driver",
      options: BALLOON,
      steps: [
        send("balloon", `{"value": ${64 * MIB}}`),
        { do: "sleep", ms: 300 },
        send("query-balloon"),
        send("cont"),
        { do: "until-event", event: "BALLOON_CHANGE" },
        send("query-balloon"),
      ],
      expect: [
        sent("balloon", `{"value": ${64 * MIB}}`),
        RETURN,
        ...queryBalloon(RAM),
        ...CONT,
        `${balloonChange(64 * MIB)} [+0s]`,
        ...queryBalloon(64 * MIB),
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "balloon off a page boundary, again to the same pages, then above the RAM: events only for a change",
      reference:
        "hw/virtio/virtio-balloon.c virtio_balloon_to_target (whole pages), set_config (only a change)",
      guest: "balloon-driver",
      options: BALLOON,
      steps: [
        send("cont"),
        send("balloon", `{"value": ${64 * MIB + 1}}`),
        { do: "until-event", event: "BALLOON_CHANGE" },
        // The same 16383 pages: the driver writes nothing new, QEMU sends nothing.
        send("balloon", `{"value": ${64 * MIB + 4096}}`),
        { do: "sleep", ms: 1_200 },
        send("query-balloon"),
        send("balloon", `{"value": ${256 * MIB}}`),
        { do: "until-event", event: "BALLOON_CHANGE", count: 2 },
        send("query-balloon"),
      ],
      expect: [
        ...CONT,
        sent("balloon", `{"value": ${64 * MIB + 1}}`),
        RETURN,
        `${balloonChange(64 * MIB + 4096)} [+0s]`,
        sent("balloon", `{"value": ${64 * MIB + 4096}}`),
        RETURN,
        ...queryBalloon(64 * MIB + 4096),
        sent("balloon", `{"value": ${256 * MIB}}`),
        RETURN,
        `${balloonChange(RAM)} [+1s]`,
        ...queryBalloon(RAM),
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "device_del of a virtio-net-pci acknowledged by the guest: backend, then device",
      reference: "issue 4 §2 device_del → DEVICE_DELETED; hw/acpi/pcihp.c eject register",
      guest: "pci-unplug-ack",
      options: [
        "-netdev",
        "user,id=u0",
        "-device",
        "virtio-net-pci,id=n1,netdev=u0,bus=pci.0,addr=5",
      ],
      steps: [
        send("cont"),
        send("device_del", '{"id": "n1"}'),
        { do: "guest", action: "unplug-ack", args: { id: "n1" } },
        { do: "until-event", event: "DEVICE_DELETED", count: 2 },
        send("device_del", '{"id": "n1"}'),
      ],
      expect: [
        ...CONT,
        sent("device_del", '{"id": "n1"}'),
        RETURN,
        ev("DEVICE_DELETED", '{"path": "/machine/peripheral/n1/virtio-backend"}'),
        ev("DEVICE_DELETED", '{"device": "n1", "path": "/machine/peripheral/n1"}'),
        sent("device_del", '{"id": "n1"}'),
        `<<< {"error": {"class": "DeviceNotFound", "desc": "Device 'n1' not found"}}`,
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "device_del of an e1000 while paused: pending (a second refused) until the guest runs and ejects",
      reference: "issue 4 §2 device_del needs running vCPUs; hw/acpi/pcihp.c; qdev_unplug",
      guest: "pci-unplug-ack",
      options: ["-netdev", "user,id=u0", "-device", "e1000,id=e1,netdev=u0,bus=pci.0,addr=6"],
      steps: [
        send("device_del", '{"id": "e1"}'),
        send("device_del", '{"id": "e1"}'),
        send("cont"),
        { do: "guest", action: "unplug-ack", args: { id: "e1" } },
        { do: "until-event", event: "DEVICE_DELETED" },
      ],
      expect: [
        sent("device_del", '{"id": "e1"}'),
        RETURN,
        sent("device_del", '{"id": "e1"}'),
        `<<< {"error": {"class": "GenericError", "desc": "Device e1 is already in the process of unplug"}}`,
        ...CONT,
        ev("DEVICE_DELETED", '{"device": "e1", "path": "/machine/peripheral/e1"}'),
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "device_del of the balloon: after the guest's eject, balloon and query-balloon are refused",
      reference:
        "hw/virtio/virtio-balloon.c unrealize removes the balloon handler; hw/acpi/pcihp.c",
      guest: "pci-unplug-ack",
      options: ["-device", "virtio-balloon-pci,id=b0,bus=pci.0,addr=7"],
      steps: [
        send("cont"),
        send("query-balloon"),
        send("device_del", '{"id": "b0"}'),
        { do: "guest", action: "unplug-ack", args: { id: "b0" } },
        { do: "until-event", event: "DEVICE_DELETED", count: 2 },
        send("query-balloon"),
        send("balloon", `{"value": ${64 * MIB}}`),
      ],
      expect: [
        ...CONT,
        ...queryBalloon(RAM),
        sent("device_del", '{"id": "b0"}'),
        RETURN,
        ev("DEVICE_DELETED", '{"path": "/machine/peripheral/b0/virtio-backend"}'),
        ev("DEVICE_DELETED", '{"device": "b0", "path": "/machine/peripheral/b0"}'),
        sent("query-balloon"),
        NO_BALLOON,
        sent("balloon", `{"value": ${64 * MIB}}`),
        NO_BALLOON,
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "query-rx-filter with an e1000 and a virtio-net-pci: only virtio answers, MACs count both",
      reference: "net/net.c qmp_query_rx_filter, qemu_macaddr_default_if_unset",
      options: [
        "-netdev",
        "user,id=u0",
        "-netdev",
        "user,id=u1",
        "-device",
        "e1000,id=e1,netdev=u0",
        "-device",
        "virtio-net-pci,id=n1,netdev=u1",
      ],
      steps: [
        send("query-rx-filter", '{"name": "e1"}'),
        send("query-rx-filter", '{"name": "u0"}'),
        send("query-rx-filter", '{"name": "n1"}'),
        send("query-rx-filter"),
      ],
      expect: [
        sent("query-rx-filter", '{"name": "e1"}'),
        '<<< {"error": {"class": "GenericError", "desc": "net client(e1) doesn\'t support rx-filter querying"}}',
        sent("query-rx-filter", '{"name": "u0"}'),
        '<<< {"error": {"class": "GenericError", "desc": "net client(u0) isn\'t a NIC"}}',
        sent("query-rx-filter", '{"name": "n1"}'),
        `<<< {"return": [${RX_FILTER_N1}]}`,
        sent("query-rx-filter"),
        `<<< {"return": [${RX_FILTER_N1}]}`,
        ...finalStatus("prelaunch", on10),
      ],
    },
    {
      name: "device_del pending since -S, then system_reset: the reset ejects it, DEVICE_DELETED after the reply",
      reference: "hw/acpi/pcihp.c: pending removals run at reset; §5 system_reset",
      options: ["-netdev", "user,id=u0", "-device", "e1000,id=e1,netdev=u0,bus=pci.0,addr=6"],
      steps: [
        send("device_del", '{"id": "e1"}'),
        send("system_reset"),
        { do: "until-event", event: "DEVICE_DELETED" },
        send("device_del", '{"id": "e1"}'),
      ],
      expect: [
        sent("device_del", '{"id": "e1"}'),
        RETURN,
        sent("system_reset"),
        ev("RESET", '{"guest": false, "reason": "host-qmp-system-reset"}'),
        RETURN,
        ev("DEVICE_DELETED", '{"device": "e1", "path": "/machine/peripheral/e1"}'),
        sent("device_del", '{"id": "e1"}'),
        `<<< {"error": {"class": "DeviceNotFound", "desc": "Device 'e1' not found"}}`,
        ...finalStatus("prelaunch", on10),
      ],
    },
    {
      name: "the guest ejects a PCI device nobody asked to unplug: DEVICE_DELETED all the same",
      reference: "hw/acpi/pcihp.c: the eject register needs no pending request",
      guest: "pci-eject-slot6",
      options: ["-netdev", "user,id=u0", "-device", "e1000,id=e1,netdev=u0,bus=pci.0,addr=6"],
      steps: [
        send("cont"),
        { do: "guest", action: "unplug-ack", args: { id: "e1" } },
        { do: "until-event", event: "DEVICE_DELETED" },
        send("device_del", '{"id": "e1"}'),
      ],
      expect: [
        ...CONT,
        ev("DEVICE_DELETED", '{"device": "e1", "path": "/machine/peripheral/e1"}'),
        sent("device_del", '{"id": "e1"}'),
        `<<< {"error": {"class": "DeviceNotFound", "desc": "Device 'e1' not found"}}`,
        ...finalStatus("running", on10),
      ],
    },
    {
      name: "device_del twice while paused after running: both accepted, one DEVICE_DELETED after cont",
      reference:
        "hw/acpi/pcihp.c pending_deleted_expires_ms = virtual now; qdev-monitor.c repeated device_del",
      guest: "pci-unplug-ack",
      options: ["-netdev", "user,id=u0", "-device", "e1000,id=e1,netdev=u0,bus=pci.0,addr=6"],
      steps: [
        send("cont"),
        // Let the virtual clock pass its first millisecond before the request.
        { do: "sleep", ms: 50 },
        send("stop"),
        send("device_del", '{"id": "e1"}'),
        send("device_del", '{"id": "e1"}'),
        send("cont"),
        { do: "guest", action: "unplug-ack", args: { id: "e1" } },
        { do: "until-event", event: "DEVICE_DELETED" },
      ],
      expect: [
        ...CONT,
        sent("stop"),
        ev("STOP", "").replace(', "data": ', ""),
        RETURN,
        sent("device_del", '{"id": "e1"}'),
        RETURN,
        sent("device_del", '{"id": "e1"}'),
        RETURN,
        ...CONT,
        ev("DEVICE_DELETED", '{"device": "e1", "path": "/machine/peripheral/e1"}'),
        ...finalStatus("running", on10),
      ],
    },
  ];
}

/** The scenarios on QEMU 7.2 (the 7.2.22 profile). */
export const GUEST_DEVICE_SCENARIOS: readonly Scenario[] = scenarios(false);
/** The same on QEMU 10.0 (the 10.0.2 profile). */
export const GUEST_DEVICE_SCENARIOS_10: readonly Scenario[] = scenarios(true);

const harness72 = await DifferentialHarness.create();
const harness10 = await DifferentialHarness.create({ qemu: QEMU_10, qemuVersion: "10.0.2" });
after(() => {
  harness72.finish("conformance (balloon, PCI unplug) on QEMU 7.2");
  harness10.finish("conformance (balloon, PCI unplug) on QEMU 10.0");
});

describe("differential conformance with QEMU 7.2.22: balloon and PCI unplug", {
  concurrency: 1,
}, () => {
  for (const scenario of GUEST_DEVICE_SCENARIOS) {
    test(`should agree on: ${scenario.name} [${scenario.reference}]`, (t) =>
      harness72.check(t, scenario));
  }
});

describe("differential conformance with QEMU 10.0.2: balloon and PCI unplug", {
  concurrency: 1,
}, () => {
  for (const scenario of GUEST_DEVICE_SCENARIOS_10) {
    test(`should agree on: ${scenario.name} [${scenario.reference}]`, (t) =>
      harness10.check(t, scenario));
  }
});
