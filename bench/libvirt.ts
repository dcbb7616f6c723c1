/**
 * libvirt benchmark: N domains started by a real libvirtd 9.0 (a private session daemon, as the
 * libvirt tests run it: test/support/libvirt.ts), on qmpkit-qemu and, in the same run, on real
 * QEMU 7.2.22 with a guest that only halts (as many as fit; 15 by default, 32 MiB each, TCG).
 *
 * For each it reports the time from the first `virsh start` to all domains running (starts
 * issued 4 at a time; libvirt's own workers take them in parallel), and the memory of the
 * emulator processes once all run: RSS and PSS (shared pages divided among the processes that
 * share them) per domain, read from /proc. Then the ratios.
 *
 * qmpkit-qemu runs from the built `dist/` when there is one (`npm run build`), else from the
 * sources through tsx (slower to start and larger; the report says which).
 *
 * Run: `npx tsx bench/libvirt.ts [SIM_N] [REAL_N]` (default 100 15), as root (the daemon then
 * runs as the user `qmpkit-libvirt`, which `.ci/run` creates) or as any user.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GuestImages } from "../test/support/guests.js";
import { type Emulator, type LibvirtDaemon, startLibvirtd } from "../test/support/libvirt.js";
import { SYSTEM_QEMU } from "../test/support/real-qemu.js";

const simCount = Number(process.argv[2] ?? 100);
const realCount = Number(process.argv[3] ?? 15);
const fromDist = existsSync(fileURLToPath(new URL("../dist/cli/qemu-main.js", import.meta.url)));

interface Outcome {
  readonly label: string;
  readonly count: number;
  readonly startSeconds: number;
  readonly rssMiB: number;
  readonly pssMiB: number;
}

function memoryOf(pid: number): { rss: number; pss: number } {
  const kib = (text: string, key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  return { rss: kib(status, "VmRSS"), pss: kib(rollup, "Pss") };
}

async function pool<T>(
  items: readonly T[],
  width: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

async function measure(
  daemon: LibvirtDaemon,
  emulator: Emulator,
  loader: string,
  count: number,
  tag: string,
): Promise<Outcome> {
  const names = Array.from(
    { length: count },
    (_, i) => `bench-${tag}-${String(i).padStart(3, "0")}`,
  );
  for (const name of names) {
    const xml = daemon.writeFile(
      `${name}.xml`,
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><loader type='rom' readonly='yes'>${loader}</loader></os>
  <features><acpi/></features><cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>
  <devices><emulator>${emulator.path}</emulator><controller type='usb' model='none'/><memballoon model='none'/><video><model type='none'/></video></devices>
</domain>\n`,
    );
    await daemon.virshOk("define", xml);
  }
  const started = process.hrtime.bigint();
  await pool(names, 4, async (name) => {
    await daemon.virshOk("start", name);
  });
  for (;;) {
    const running = (await daemon.virshOk("list", "--name", "--state-running"))
      .split("\n")
      .filter((l) => l.startsWith(`bench-${tag}-`));
    if (running.length === count) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const startSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  let rss = 0;
  let pss = 0;
  const pids = daemon.emulatorPids();
  for (const name of names) {
    const pid = pids.get(name);
    if (pid === undefined) throw new Error(`no pid file for ${name}`);
    const m = memoryOf(pid);
    rss += m.rss;
    pss += m.pss;
  }
  await pool(names, 4, async (name) => {
    await daemon.virshOk("destroy", name);
    await daemon.virshOk("undefine", name);
  });
  return {
    label: emulator.label,
    count,
    startSeconds,
    rssMiB: rss / 1024 / count,
    pssMiB: pss / 1024 / count,
  };
}

const guests = new GuestImages();
const daemon = await startLibvirtd();
try {
  const loader = daemon.writeFile("idle.bin", readFileSync(await guests.image("idle")));
  const sim = daemon.simQemu("7.2.22", "qmpkit-qemu", ["--advertise", "recorded"], fromDist);
  const real = daemon.realQemu(SYSTEM_QEMU, "qemu");
  // Each emulator is probed at its first define, before the clock starts: the timings are of starts.
  const results: Outcome[] = [];
  for (const [emulator, count, tag] of [
    [sim, simCount, "sim"],
    [real, realCount, "real"],
  ] as const) {
    if (count === 0) continue;
    try {
      results.push(await measure(daemon, emulator, loader, count, tag));
    } catch (e) {
      // Still report the other side; the run fails at the end.
      console.log(`${emulator.label}: FAILED: ${(e as Error).message}`);
      process.exitCode = 1;
      for (const name of (await daemon.virsh("list", "--all", "--name")).stdout.split("\n")) {
        if (!name.startsWith(`bench-${tag}-`)) continue;
        await daemon.virsh("destroy", name);
        await daemon.virsh("undefine", name);
      }
    }
  }
  console.log(
    `qmpkit-qemu runs from ${fromDist ? "dist/ (built)" : "the sources through tsx (run npm run build for the built figures)"}`,
  );
  console.log(
    "emulator                 domains  all running   per domain   RSS/domain  PSS/domain",
  );
  for (const r of results) {
    console.log(
      `${r.label.padEnd(24)} ${String(r.count).padStart(7)}  ${r.startSeconds.toFixed(1).padStart(9)} s  ${((r.startSeconds / r.count) * 1000).toFixed(0).padStart(8)} ms  ${r.rssMiB.toFixed(1).padStart(7)} MiB ${r.pssMiB.toFixed(1).padStart(7)} MiB`,
    );
  }
  const s = results.find((r) => r.label === sim.label);
  const q = results.find((r) => r.label === real.label);
  if (s !== undefined && q !== undefined)
    console.log(
      `ratios (real QEMU / qmpkit-qemu): start time per domain ${(q.startSeconds / q.count / (s.startSeconds / s.count)).toFixed(2)}x, RSS per domain ${(q.rssMiB / s.rssMiB).toFixed(2)}x, PSS per domain ${(q.pssMiB / s.pssMiB).toFixed(2)}x`,
    );
} finally {
  await daemon.stop();
  guests.dispose();
}
