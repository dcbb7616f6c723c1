/**
 * libvirt's domain against the real QEMU and against `qmpkit-qemu` (qemu-behaviour §13): the
 * same command line, as libvirt 9.0 writes it (monitor on an inherited socket, JSON
 * `-object`/`-device`/`-blockdev`/`-netdev`, a pty serial logged to an fd set, a raw disk, a
 * user NIC, a balloon), then the questions libvirt asks once the process is up
 * (qemuProcessLaunch … qemuProcessFinishStartup, `virsh domstats`), answer for answer. Volatile
 * values are normalised: thread ids, the pty's number, the private directory's name.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { askEach, type QmpRequest } from "../support/ask-each.js";
import { QEMU_10, type QemuInstallation, realQemuTest, SYSTEM_QEMU } from "../support/real-qemu.js";
import { type DomainProcess, type DomainShape, startDomain } from "./libvirt-support.js";

const VCPU = "/machine/unattached/device[0]";

/** What libvirt 9.0 asks once a domain's QEMU is up, before `cont` (its QMP log, in order). */
function startQuestions(vcpuProperties: readonly string[]): QmpRequest[] {
  return [
    { execute: "query-migrate-capabilities" },
    {
      execute: "migrate-set-capabilities",
      arguments: { capabilities: [{ capability: "events", state: true }] },
    },
    { execute: "query-chardev" },
    { execute: "query-hotpluggable-cpus" },
    { execute: "query-cpus-fast" },
    { execute: "qom-list", arguments: { path: VCPU } },
    ...vcpuProperties.map((property) => ({
      execute: "qom-get",
      arguments: { path: VCPU, property },
    })),
    { execute: "query-iothreads" },
    { execute: "query-named-block-nodes", arguments: { flat: true } },
    { execute: "qom-list", arguments: { path: "/machine/peripheral" } },
    { execute: "query-block" },
    { execute: "query-balloon" },
    // virsh domstats
    { execute: "qom-list", arguments: { path: "/machine/peripheral/balloon0" } },
    {
      execute: "qom-get",
      arguments: { path: "/machine/peripheral/balloon0", property: "guest-stats" },
    },
    { execute: "query-stats-schemas" },
    { execute: "query-stats", arguments: { target: "vcpu" } },
    { execute: "query-stats", arguments: { target: "vm" } },
    { execute: "query-blockstats" },
    { execute: "query-blockstats", arguments: { "query-nodes": true } },
    { execute: "query-dirty-rate" },
    // reconnection (libvirtd restarted) and the rest
    { execute: "query-status" },
    { execute: "query-jobs" },
    { execute: "query-uuid" },
    { execute: "query-name" },
    // refusals
    { execute: "qom-list", arguments: { path: "/machine/nosuch" } },
    { execute: "qom-get", arguments: { path: VCPU, property: "nosuch" } },
  ];
}

/** Thread ids, pty numbers and the private directory vary from run to run. */
function normalise(line: string, d: DomainProcess): string {
  return line
    .replaceAll(d.dir, "DIR")
    .replace(/"thread-id": \d{3,}/g, '"thread-id": TID')
    .replace(/\/dev\/pts\/\d+/g, "/dev/pts/N");
}

const RELEASES: ReadonlyArray<readonly [string, QemuInstallation]> = [
  ["7.2.22", SYSTEM_QEMU],
  ["10.0.2", QEMU_10],
];

for (const [version, qemu] of RELEASES) {
  suite(`libvirt's domain on QEMU ${version} and on qmpkit-qemu`, realQemuTest(qemu), () => {
    let dir: string;
    let image: string;
    const shape = (): DomainShape => ({ disk: image, ptySerial: true, nic: true, balloon: true });
    let real: { replies: string[]; requests: QmpRequest[] } | undefined;

    before(() => {
      // One sparse raw image for both: the sizes come from the file.
      dir = mkdtempSync(join(tmpdir(), "qmpkit-libvirt-image-"));
      image = join(dir, "disk.raw");
      writeFileSync(image, "");
      truncateSync(image, 16 << 20);
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    async function ask(
      d: DomainProcess,
      requests?: QmpRequest[],
    ): Promise<{
      replies: string[];
      requests: QmpRequest[];
    }> {
      const qmp = await d.connect();
      try {
        let questions = requests;
        if (questions === undefined) {
          // The vCPU's properties as this QEMU lists them, then libvirt's questions about each.
          const [listed] = await askEach(qmp, [{ execute: "qom-list", arguments: { path: VCPU } }]);
          const names = (JSON.parse(listed!) as { return: Array<{ name: string }> }).return;
          questions = startQuestions(names.map((p) => p.name));
        }
        const replies = await askEach(qmp, questions);
        return { replies: replies.map((r) => normalise(r, d)), requests: questions };
      } finally {
        qmp.close();
      }
    }

    test("should answer libvirt's questions about the started domain as the real binary does", async () => {
      const r = await startDomain({ kind: "real", qemu }, shape());
      try {
        real = await ask(r);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${r.stderr()}`);
      } finally {
        await r.stop();
      }
      const s = await startDomain({ kind: "sim", version }, shape());
      let sim: string[];
      try {
        sim = (await ask(s, real.requests)).replies;
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${s.stderr()}`);
      } finally {
        await s.stop();
      }
      const differences = real.requests.flatMap((request, i) =>
        sim[i] === real!.replies[i]
          ? []
          : [`${JSON.stringify(request)}\n  real: ${real!.replies[i]}\n  sim:  ${sim[i]}`],
      );
      assert.deepEqual(differences, [], differences.join("\n"));
      // libvirt asks about ~440 vCPU properties; all of them were compared.
      assert.ok(real.requests.length > 400, String(real.requests.length));
    });

    test("should place hot-pluggable vCPU slots and a second vCPU as the real binary does", async () => {
      const second = "/machine/unattached/device[2]";
      const questions: QmpRequest[] = [
        { execute: "query-hotpluggable-cpus" },
        { execute: "query-cpus-fast" },
        ...["apic-id", "socket-id", "core-id", "thread-id", "hotplugged", "family"].map(
          (property) => ({ execute: "qom-get", arguments: { path: second, property } }),
        ),
      ];
      const answers: string[][] = [];
      for (const program of [{ kind: "real", qemu } as const, { kind: "sim", version } as const]) {
        const d = await startDomain(program, { smp: "2,maxcpus=4,sockets=2,cores=2,threads=1" });
        try {
          answers.push((await ask(d, questions)).replies);
        } finally {
          await d.stop();
        }
      }
      assert.deepEqual(answers[1], answers[0]);
    });

    test("should end on SIGTERM with SHUTDOWN host-signal and status 0 despite -no-shutdown", async () => {
      const seen: string[] = [];
      for (const program of [{ kind: "real", qemu } as const, { kind: "sim", version } as const]) {
        const d = await startDomain(program, {});
        try {
          const qmp = await d.connect();
          d.process.kill("SIGTERM");
          const event = await qmp.nextLine(20_000);
          seen.push(
            `${(event ?? "").replace(/"timestamp": \{[^}]*\}, /, "")} exit ${await d.exited}`,
          );
          qmp.close();
        } finally {
          await d.stop();
        }
      }
      assert.equal(
        seen[0],
        '{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}\r\n exit 0',
      );
      assert.equal(seen[1], seen[0]);
    });
  });
}
