/**
 * The libvirt harness itself (test/support/libvirt.ts): a failed capability probe, which libvirt
 * reports only as "An error occurred, but the cause is unknown", comes with the cause from the
 * daemon's log; the daemon's files go away with it.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, suite, test } from "node:test";
import { type LibvirtDaemon, libvirtTest, startLibvirtd } from "../support/libvirt.js";

suite("the private libvirtd of the tests", libvirtTest(), () => {
  let daemon: LibvirtDaemon;
  before(async () => {
    daemon = await startLibvirtd();
  });
  after(async () => {
    await daemon?.stop();
  });

  test("should put a failed probe's cause, from the daemon's log, in virsh's error", async () => {
    // An emulator that cannot be probed: it says why on stderr and exits, as a broken QEMU does.
    const broken = daemon.writeFile(
      "bin/broken-qemu",
      "#!/bin/sh\necho 'broken-qemu: this emulator refuses every command line' >&2\nexit 1\n",
      0o755,
    );
    const xml = daemon.writeFile(
      "broken.xml",
      `<domain type='qemu'><name>broken</name><memory unit='MiB'>16</memory><os><type arch='x86_64'>hvm</type></os><devices><emulator>${broken}</emulator></devices></domain>\n`,
    );
    const plain = await daemon.virsh("define", xml);
    assert.notEqual(plain.code, 0);
    await assert.rejects(daemon.virshOk("define", xml), (e: Error) => {
      assert.match(e.message, /virsh define .* failed/);
      assert.match(
        e.message,
        /libvirtd's errors:\n.*broken-qemu: this emulator refuses every command line/s,
      );
      return true;
    });
  });

  test("should remove its directory when stopped", async () => {
    const other = await startLibvirtd();
    assert.ok(existsSync(other.dir));
    await other.stop();
    assert.equal(existsSync(other.dir), false);
  });
});
