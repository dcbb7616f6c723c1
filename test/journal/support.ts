/** Test support for the journal layer's tests. */
import { isCommandError } from "../../src/base/errors.js";
import type { JsonObject, JsonValue } from "../../src/base/json.js";
import { QmpClient, type QmpEvent } from "../../src/client/index.js";

/** The QEMU options `drive` needs: a PC (paused) with an empty IDE CD-ROM `cd`. */
export const DRIVE_MACHINE = {
  machine: "pc",
  args: ["-drive", "if=none,id=cd0,media=cdrom", "-device", "ide-cd,drive=cd0,id=cd"],
};

/** What a client saw: every reply (or error), every event, and the raw text received. */
export interface Run {
  readonly replies: JsonValue[];
  readonly events: QmpEvent[];
  readonly received: string;
}

/** Events the drive below causes on QEMU 7.2 (`-S`, a PC with an empty IDE CD-ROM). */
export const EXPECTED_EVENTS = ["RESUME", "STOP", "RESET", "DEVICE_TRAY_MOVED"];

/**
 * The client code run against QEMU and against the replays: commands awaited one by one (the
 * run-state tracker off, so that no command is sent in the background), then the events waited
 * for.
 */
export async function drive(
  target: string,
  onTraffic?: (direction: "in" | "out", text: string) => void,
): Promise<Run> {
  let received = "";
  const client = await QmpClient.connect(target, {
    trackRunState: false,
    timeoutMs: 10_000,
    onTraffic: (direction, text) => {
      if (direction === "in") received += text;
      onTraffic?.(direction, text);
    },
  });
  const events: QmpEvent[] = [];
  const stream = client.events();
  const collecting = (async () => {
    for await (const e of stream) {
      events.push(e);
      if (EXPECTED_EVENTS.every((name) => events.some((x) => x.event === name))) return;
    }
  })();
  const replies: JsonValue[] = [];
  const run = async (name: string, args?: JsonObject) => {
    try {
      replies.push((await client.execute(name, args)) as JsonValue);
    } catch (error) {
      if (!isCommandError(error)) throw error;
      replies.push({ class: error.errorClass, desc: error.desc });
    }
  };
  try {
    await run("query-status");
    await run("cont");
    await run("stop");
    await run("system_reset");
    await run("eject", { id: "cd", force: true });
    await run("set-action", { reboot: "shutdown" });
    await run("device_del", { id: "no-such-device" });
    await run("query-status");
    const timeout = setTimeout(() => stream.close(), 10_000);
    await collecting;
    clearTimeout(timeout);
  } finally {
    await client.close();
  }
  return { replies, events, received };
}

// A small recording in libvirt's .replies format (tests/qemucapabilitiesdata/caps_*.replies):
// indented objects separated by blank lines, no greeting.
export const SAMPLE_REPLIES = `{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-version",
  "id": "libvirt-2"
}

{
  "return": {
    "qemu": {
      "micro": 2,
      "minor": 2,
      "major": 8
    },
    "package": "v8.2.2"
  },
  "id": "libvirt-2"
}

{
  "execute": "query-kvm",
  "id": "libvirt-3"
}

{
  "return": {
    "enabled": true,
    "present": true
  },
  "id": "libvirt-3"
}
`;
