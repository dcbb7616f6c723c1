/**
 * The libvirt comparison's script (docs/libvirt.md): the same domain XMLs and `virsh` steps run
 * on a private libvirtd against one emulator (real QEMU or qmpkit-qemu), recording what a
 * management stack sees: `virsh domstate --reason` after each step, the `virsh event --all
 * --loop` lines, the QMP messages libvirt exchanged (from its debug log) and `virsh
 * domcapabilities`. The comparison tests run it twice and compare the records.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { GuestImages } from "../support/guests.js";
import {
  type Emulator,
  type EventWatch,
  type LibvirtDaemon,
  type QmpLogEntry,
  qmpLogEntries,
} from "../support/libvirt.js";

const domainDir = fileURLToPath(new URL("./domains/", import.meta.url));

export const ACPI_DOMAIN = "qmpkit-acpi";
export const PANIC_DOMAIN = "qmpkit-panic";

/** What one run of the scenario recorded. */
export interface ScenarioRecord {
  readonly emulator: Emulator;
  /** `STEP: STATE (REASON)` after each step. */
  readonly states: string[];
  /** Every `virsh event --all --loop` line, in order (the watch restarts with the daemon). */
  readonly events: string[];
  /** The domains' QMP traffic, one normalised message a line, `--- session` between monitors. */
  readonly transcript: string[];
  /** The probe's QMP traffic (every monitor opened before the scenario), normalised. */
  readonly probe: string[];
  /** `virsh domcapabilities` for the emulator, its path normalised. */
  readonly domcapabilities: string;
  /** Steps that failed, with the cause (the run goes on to the next step where it can). */
  readonly failures: string[];
}

/** A domain XML from `domains/`, with its placeholders filled in, written into the daemon's dir. */
function domainXml(daemon: LibvirtDaemon, name: string, values: Record<string, string>): string {
  let xml = readFileSync(`${domainDir}${name}.xml`, "utf8");
  for (const [key, value] of Object.entries(values)) xml = xml.replaceAll(`@${key}@`, value);
  // The same names on both sides (each has its own daemon directory): paths reach QMP answers.
  return daemon.writeFile(`${name}.xml`, xml);
}

/** `virsh domstate --reason`, e.g. `running (booted)`. */
async function domstate(daemon: LibvirtDaemon, domain: string): Promise<string> {
  return (await daemon.virshOk("domstate", "--reason", domain)).trim();
}

/** Polls `virsh domstate --reason` until it is `want` (a state change event may come first). */
async function waitForState(
  daemon: LibvirtDaemon,
  domain: string,
  want: string,
  timeoutMs = 60_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let state = "";
  while (Date.now() < deadline) {
    state = await domstate(daemon, domain);
    if (state === want) return state;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${domain} is still ${state}, not ${want}, after ${timeoutMs} ms`);
}

/** Waits until the log has `count` `command` messages sent after the last `after` message. */
async function waitForCommands(
  daemon: LibvirtDaemon,
  offset: number,
  after: string,
  command: string,
  count: number,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const sent = (e: QmpLogEntry, name: string) =>
    e.kind === "send" && e.text.includes(`"execute":"${name}"`);
  let seen = 0;
  while (Date.now() < deadline) {
    const entries = qmpLogEntries(daemon.log().slice(offset));
    let last = -1;
    entries.forEach((e, i) => {
      if (sent(e, after)) last = i;
    });
    seen = last < 0 ? 0 : entries.slice(last + 1).filter((e) => sent(e, command)).length;
    const replied =
      last >= 0 && entries.slice(last + 1).filter((e) => e.kind === "reply").length >= seen;
    if (seen >= count && replied) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `libvirt sent ${seen} ${command} after ${after}, not ${count}, within ${timeoutMs} ms`,
  );
}

/** Runs the whole scenario on `emulator` and returns what it recorded. */
export async function runScenario(
  daemon: LibvirtDaemon,
  emulator: Emulator,
  guests: GuestImages,
): Promise<ScenarioRecord> {
  const disk = daemon.writeFile("disk.img", Buffer.alloc(1024 * 1024));
  const acpiLoader = daemon.writeFile(
    "acpi-button.bin",
    readFileSync(await guests.image("acpi-button")),
  );
  const panicLoader = daemon.writeFile(
    "pvpanic-panic.bin",
    readFileSync(await guests.image("pvpanic-panic")),
  );
  const acpiXml = domainXml(daemon, ACPI_DOMAIN, {
    EMULATOR: emulator.path,
    LOADER: acpiLoader,
    DISK: disk,
  });
  const panicXml = domainXml(daemon, PANIC_DOMAIN, {
    EMULATOR: emulator.path,
    LOADER: panicLoader,
  });
  // The simulated guests do what the firmware images do (ignored by real QEMU's wrapper). The
  // images are the whole firmware: no SeaBIOS, so none of its two extra resets after a reset.
  daemon.simArgs(ACPI_DOMAIN, ["--guest-acpi-shutdown", "10", "--firmware-resets", "0"]);
  const script = daemon.writeFile("panic.jsonl", '{"at": "200ms", "action": "panic"}\n');
  daemon.simArgs(PANIC_DOMAIN, ["--guest-script", script, "--firmware-resets", "0"]);

  const probeFrom = daemon.log().length;
  const failures: string[] = [];
  const states: string[] = [];
  const events: string[] = [];

  // Defining the sentinel probes the emulator: everything up to here is the probe.
  let watch: EventWatch = await daemon.watchEvents(emulator);
  const domcapabilities = normaliseDomcaps(
    await daemon.virshOk(
      "domcapabilities",
      "--emulatorbin",
      emulator.path,
      "--virttype",
      "qemu",
      "--arch",
      "x86_64",
      "--machine",
      "pc",
    ),
    emulator.path,
  );
  const scenarioFrom = daemon.log().length;
  const probe = normaliseTranscript(
    qmpLogEntries(daemon.log().slice(probeFrom, scenarioFrom)),
    daemon.dir,
    "probes",
  );

  const record = async (step: string, domain: string) => {
    states.push(`${step}: ${await domstate(daemon, domain)}`);
  };
  const step = async (name: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message}`);
    }
  };
  const acpiEvent = (what: string) => `event 'lifecycle' for domain '${ACPI_DOMAIN}': ${what}`;
  const panicEvent = (what: string) => `event 'lifecycle' for domain '${PANIC_DOMAIN}': ${what}`;

  await step("define", async () => {
    await daemon.virshOk("define", acpiXml);
    await watch.waitFor(acpiEvent("Defined Added"));
    await record("define", ACPI_DOMAIN);
  });
  await step("start", async () => {
    await daemon.virshOk("start", ACPI_DOMAIN);
    await watch.waitFor(acpiEvent("Started Booted"));
    await record("start", ACPI_DOMAIN);
  });
  await step("suspend", async () => {
    await daemon.virshOk("suspend", ACPI_DOMAIN);
    await watch.waitFor(acpiEvent("Suspended Paused"));
    await record("suspend", ACPI_DOMAIN);
  });
  await step("resume", async () => {
    const before = watch.lines.length;
    await daemon.virshOk("resume", ACPI_DOMAIN);
    await waitForLine(watch, before, acpiEvent("Resumed Unpaused"));
    await record("resume", ACPI_DOMAIN);
  });
  await step("reset", async () => {
    const offset = daemon.log().length;
    await daemon.virshOk("reset", ACPI_DOMAIN);
    await watch.waitFor(`event 'reboot' for domain '${ACPI_DOMAIN}'`);
    // libvirt refreshes the disks after a reset twice, once from the API call and once from the
    // RESET event (qom-list /machine/peripheral, query-block each): let both finish, so that
    // the next step's commands do not interleave with them.
    await waitForCommands(daemon, offset, "system_reset", "query-block", 2);
    await record("reset", ACPI_DOMAIN);
  });
  await step("shutdown", async () => {
    await daemon.virshOk("shutdown", ACPI_DOMAIN);
    await watch.waitFor(acpiEvent("Stopped Shutdown"));
    await record("shutdown", ACPI_DOMAIN);
  });
  await step("start again", async () => {
    const before = watch.lines.length;
    await daemon.virshOk("start", ACPI_DOMAIN);
    await waitForLine(watch, before, acpiEvent("Started Booted"));
    await record("start again", ACPI_DOMAIN);
  });
  await step("domstats", async () => {
    // What management stacks poll: query-stats, query-blockstats, query-balloon and more go
    // into the transcript. The numbers virsh prints come partly from /proc (cpu.time): not kept.
    await daemon.virshOk("domstats", ACPI_DOMAIN);
    await record("domstats", ACPI_DOMAIN);
  });
  await step("guest panic (on_crash=preserve)", async () => {
    await daemon.virshOk("define", panicXml);
    await daemon.virshOk("start", PANIC_DOMAIN);
    await watch.waitFor(panicEvent("Crashed Panicked"));
    await waitForState(daemon, PANIC_DOMAIN, "crashed (panicked)");
    await record("guest panic", PANIC_DOMAIN);
  });
  await step("destroy", async () => {
    await daemon.virshOk("destroy", PANIC_DOMAIN);
    await watch.waitFor(panicEvent("Stopped Destroyed"));
    await record("destroy", PANIC_DOMAIN);
    await daemon.virshOk("undefine", PANIC_DOMAIN);
    await watch.waitFor(panicEvent("Undefined Removed"));
  });
  await step("libvirtd restart", async () => {
    await watch.stop();
    events.push(...watch.lines);
    await daemon.restart();
    watch = await daemon.watchEvents(emulator);
    await record("libvirtd restart", ACPI_DOMAIN);
    // The reconnected domain still obeys: pause and resume it through the new monitor.
    await daemon.virshOk("suspend", ACPI_DOMAIN);
    await watch.waitFor(acpiEvent("Suspended Paused"));
    await record("suspend after restart", ACPI_DOMAIN);
  });
  await step("destroy after restart", async () => {
    await daemon.virshOk("destroy", ACPI_DOMAIN);
    await watch.waitFor(acpiEvent("Stopped Destroyed"));
    await record("destroy after restart", ACPI_DOMAIN);
  });
  await step("undefine", async () => {
    await daemon.virshOk("undefine", ACPI_DOMAIN);
    await watch.waitFor(acpiEvent("Undefined Removed"));
  });
  await watch.stop();
  events.push(...watch.lines);
  // Whatever a failed step left behind must not reach the next run on this daemon.
  for (const d of [PANIC_DOMAIN, ACPI_DOMAIN]) {
    await daemon.virsh("destroy", d);
    await daemon.virsh("undefine", d);
  }
  const transcript = normaliseTranscript(
    qmpLogEntries(daemon.log().slice(scenarioFrom)),
    daemon.dir,
    "domains",
  );
  return { emulator, states, events, transcript, probe, domcapabilities, failures };
}

/** Waits for `line` among the lines printed after the first `from`. */
async function waitForLine(watch: EventWatch, from: number, line: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!watch.lines.slice(from).includes(line)) {
    if (Date.now() > deadline)
      throw new Error(`no event line ${line}; seen:\n${watch.lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `virsh domcapabilities` with the emulator's path (which differs by design) made neutral. */
function normaliseDomcaps(xml: string, path: string): string {
  return xml.replaceAll(path, "EMULATOR");
}

/**
 * One line a message, with what differs from run to run made neutral: event timestamps,
 * libvirt's command ids (a counter per monitor), thread ids, pty names and the daemon's
 * private directory.
 */
export function normaliseTranscript(
  entries: readonly QmpLogEntry[],
  dir: string,
  which: "probes" | "domains",
): string[] {
  // One block a monitor, in the order they opened: libvirt talks to several at once (a probe
  // of the machine's own qemu-system-* can run beside a domain), so their lines interleave in
  // the log in an order of no meaning.
  const sessions = new Map<number, QmpLogEntry[]>();
  for (const e of entries) {
    let list = sessions.get(e.session);
    if (list === undefined) sessions.set(e.session, (list = []));
    list.push(e);
  }
  const out: string[] = [];
  for (const list of sessions.values()) {
    // A probe says query-version right after qmp_capabilities; a domain's monitor does not.
    const probe =
      list.filter((e) => e.kind === "send")[1]?.text.includes('"query-version"') ?? false;
    if (probe !== (which === "probes")) continue;
    out.push("--- monitor");
    for (const e of list) {
      const text = e.text
        .replaceAll(dir, "DIR")
        .replace(/"timestamp": \{"seconds": \d+, "microseconds": \d+\}/g, '"timestamp": T')
        .replace(/"id": ?"libvirt-\d+"/g, '"id": "libvirt-N"')
        .replace(/"thread-id": ?\d+/g, '"thread-id": N')
        .replace(/\/dev\/pts\/\d+/g, "/dev/pts/N")
        .replace(/domain-\d+-/g, "domain-N-");
      out.push(`${e.kind === "send" ? ">" : e.kind === "reply" ? "<" : "!"} ${text}`);
    }
  }
  return out;
}

/**
 * The event lines with libvirt's own race removed: a guest panic is handled on a worker thread
 * (processGuestPanicEvent) while the STOP that QEMU sends right after GUEST_PANICKED is handled
 * on the monitor's thread; when STOP is handled first, libvirt reports `Suspended Paused` before
 * `Crashed Panicked`, otherwise not at all (both seen with real QEMU 7.2.22 on this machine).
 */
export function deterministicEvents(lines: readonly string[]): string[] {
  return lines.filter(
    (l, i) =>
      !(
        l === `event 'lifecycle' for domain '${PANIC_DOMAIN}': Suspended Paused` &&
        lines[i + 1] === `event 'lifecycle' for domain '${PANIC_DOMAIN}': Crashed Panicked`
      ),
  );
}
