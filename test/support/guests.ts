/**
 * Test support: the tiny conformance guests (`guests/*.asm`), assembled with `nasm -f bin` into a
 * temporary directory when a test needs them (no binary is kept in the repository).
 *
 * Each guest is a 64 KiB firmware image for `qemu-system-x86_64 -machine pc -bios FILE` that
 * does one thing a real guest OS would do (ACPI power-off, a reset, a pvpanic write, a watchdog
 * storm…) 200 ms after it starts, then halts. See `guests/firmware.inc`.
 */
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The guests there are, by file name. */
export const GUEST_NAMES = [
  "idle",
  "acpi-s5",
  "acpi-button",
  "acpi-s4",
  "acpi-s3",
  "reset-cf9",
  "reset-kbd",
  "reset-triple",
  "pvpanic-panic",
  "pvpanic-crashloaded",
  "pvpanic-shutdown",
  "watchdog-once",
  "watchdog-storm",
  "rtc-storm",
  "ata-read-storm",
  "balloon-storm",
  "balloon-driver",
  "pci-unplug-ack",
  "pci-eject-slot6",
] as const;

/** One of {@link GUEST_NAMES}. */
export type GuestName = (typeof GUEST_NAMES)[number];

/** Where the guest sources live. */
export const guestSourceDir = fileURLToPath(new URL("./guests/", import.meta.url));

let nasm: boolean | undefined;

/** Whether `nasm` can be run. */
export function nasmAvailable(): boolean {
  nasm ??= spawnSync("nasm", ["-v"], { stdio: "ignore" }).status === 0;
  return nasm;
}

/** Assembled guest images in one temporary directory; `dispose()` removes it. */
export class GuestImages {
  readonly dir = mkdtempSync(join(tmpdir(), "qmpkit-guests-"));
  private readonly built = new Map<GuestName, Promise<string>>();

  /** The path of the assembled image of `name` (assembled on first use). */
  image(name: GuestName): Promise<string> {
    let path = this.built.get(name);
    if (path === undefined) {
      path = assemble(name, this.dir);
      this.built.set(name, path);
    }
    return path;
  }

  /**
   * A 1 MiB raw disk image and a blkdebug configuration that fails every read of it with EIO
   * (`inject-error` on the `read_aio` event), made once in this directory; returns the value for
   * `-drive file=…`.
   */
  failingDisk(): string {
    const image = join(this.dir, "failing-disk.img");
    const config = join(this.dir, "failing-disk.blkdebug");
    if (!existsSync(config)) {
      writeFileSync(image, Buffer.alloc(1024 * 1024));
      writeFileSync(config, '[inject-error]\nevent = "read_aio"\nerrno = "5"\n');
    }
    return `blkdebug:${config}:${image}`;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function assemble(name: GuestName, outDir: string): Promise<string> {
  const out = join(outDir, `${name}.bin`);
  const args = ["-f", "bin", "-i", guestSourceDir, "-o", out, join(guestSourceDir, `${name}.asm`)];
  return new Promise((resolve, reject) => {
    execFile("nasm", args, (error, _stdout, stderr) => {
      if (error !== null) {
        reject(
          new Error(`assembling guest ${name} failed: nasm ${args.join(" ")}\n${stderr}`, {
            cause: error,
          }),
        );
      } else {
        resolve(out);
      }
    });
  });
}
