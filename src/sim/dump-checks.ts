/**
 * The checks of `dump-guest-memory` (dump/dump.c), as QEMU 7.2.22 and 10.0.2 make them, apart
 * from the dump itself (`SimDevices.dumpGuestMemory`). Two groups, because a VM that runs sees
 * the second one stopped (STOP before, RESUME after, even when the dump is refused there):
 *
 * - {@link dumpRequestError}: `qmp_dump_guest_memory`, before anything happens;
 * - {@link dumpSize} and {@link dumpInitError}: `dump_init`, with the VM stopped.
 *
 * Debian builds QEMU without lzo and snappy, so their kdump formats are refused as unavailable
 * (seen on 7.2.22 and 10.0.2).
 *
 * @module
 */
import type { JsonObject } from "../base/json.js";
import { openForWriteError } from "./host-files.js";
import type { RunState } from "./run-state.js";
import type { QemuProfile } from "./versions.js";

/**
 * Why `qmp_dump_guest_memory` refuses the request (its arguments already checked by the
 * catalogue's validator), or `undefined`; in its order: an incoming migration, a dump under
 * way, a kdump format with paging or a filter, `begin` without `length` and the reverse, a
 * kdump format the build lacks, an `fd:` name `getfd` never gave (a number is taken as a
 * descriptor from 10.0: the simulator lets it go), a `file:` it cannot open (7.2:
 * `qemu_open_old`, "open"; 10.0: `qemu_create`, "create"), any other protocol.
 */
export function dumpRequestError(
  args: JsonObject,
  state: RunState,
  dumpInProgress: boolean,
  profile: QemuProfile,
): string | undefined {
  const v10 = profile.has("dump-checks-reworded");
  const format = typeof args.format === "string" ? args.format : "elf";
  const protocol = typeof args.protocol === "string" ? args.protocol : "";
  const hasBegin = args.begin !== undefined;
  const hasLength = args.length !== undefined;
  if (state === "inmigrate") return "Dump not allowed during incoming migration.";
  if (dumpInProgress) return "There is a dump in process, please wait.";
  if (format !== "elf" && (args.paging === true || hasBegin || hasLength)) {
    return "kdump-compressed format doesn't support paging or filter";
  }
  if (hasBegin && !hasLength) return "Parameter 'length' is missing";
  if (!hasBegin && hasLength) return "Parameter 'begin' is missing";
  if (format.includes("lzo")) return "kdump-lzo is not available now";
  if (format.includes("snappy")) return "kdump-snappy is not available now";
  if (protocol.startsWith("fd:")) {
    return `File descriptor named '${protocol.slice(3)}' has not been found`;
  }
  if (protocol.startsWith("file:")) {
    const path = protocol.slice(5);
    const why = openForWriteError(path);
    if (why === undefined) return undefined;
    return `Could not ${v10 ? "create" : "open"} '${path}': ${why}`;
  }
  return v10
    ? "parameter 'protocol' must start with 'file:' or 'fd:'"
    : "Invalid parameter 'protocol'";
}

/** The BIOS ROM mapped below 4 GiB on `-machine pc` (SeaBIOS's `bios-256k.bin`). */
const PC_BIOS_BYTES = 256 * 1024;
const FOUR_GIB = 2 ** 32;

/**
 * The guest memory a dump covers (`guest_phys_blocks`) as [start, end) ranges: the RAM from 0
 * (`-machine pc` below 3.5 GiB: its ROMs in the first MiB overlay RAM, one block with it) and,
 * on `pc`, the BIOS at the top of the first 4 GiB.
 */
function guestBlocks(machine: "none" | "pc", ramBytes: number): Array<[number, number]> {
  const blocks: Array<[number, number]> = ramBytes > 0 ? [[0, ramBytes]] : [];
  if (machine === "pc") blocks.push([FOUR_GIB - PC_BIOS_BYTES, FOUR_GIB]);
  return blocks;
}

/**
 * How many bytes a dump of the filter `begin`/`length` (none: everything) writes: the
 * overlap of each block with the filter (`dump_filtered_memblock_size`), summed
 * (`dump_calculate_size`).
 */
export function dumpSize(
  machine: "none" | "pc",
  ramBytes: number,
  begin: number | undefined,
  length: number | undefined,
): number {
  let total = 0;
  for (const [start, end] of guestBlocks(machine, ramBytes)) {
    if (begin === undefined || length === undefined || length === 0) total += end - start;
    else total += Math.max(0, Math.min(begin + length, end) - Math.max(begin, start));
  }
  return total;
}

/**
 * Why `dump_init` gives up (the VM already stopped), or `undefined`: a filter of length 0, then
 * nothing to dump. 7.2.22 also complains on stderr about the first: its cleanup unrefs an array
 * that was never made (seen; not from 10.0).
 */
export function dumpInitError(
  args: JsonObject,
  total: number,
  profile: QemuProfile,
): { readonly desc: string; readonly stderr?: string } | undefined {
  if (args.length === 0) {
    return profile.has("dump-checks-reworded")
      ? { desc: "parameter 'length' expects a non-zero size" }
      : {
          desc: "Invalid parameter 'length'",
          stderr: "GLib: g_array_unref: assertion 'array' failed\n",
        };
  }
  if (total === 0) return { desc: "dump: no guest memory to dump" };
  return undefined;
}

/**
 * Why the dump itself fails (DUMP_COMPLETED `failed` with this `error`, and the same error as
 * the reply): a Windows dump needs the guest's Windows crash-dump header, which the
 * simulator's guest, like the tiny ones, never wrote (`create_win_dump`, dump/win_dump.c).
 */
export function dumpWriteError(args: JsonObject): string | undefined {
  return args.format === "win-dmp" ? "win-dump: invalid vmcoreinfo note size" : undefined;
}
