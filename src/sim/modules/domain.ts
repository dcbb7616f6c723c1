/**
 * What a management tool asks of a started domain (libvirt 9.0: qemuProcessLaunch and after,
 * `virsh domstats`), answered from the domain's configuration (`../domain-config.ts`) and the
 * release's recordings (qemu-behaviour §13):
 *
 * | command | answer |
 * |---|---|
 * | `query-chardev` | every chardev, in QOM's hash-table order: socket (`unix:PATH,server=on`, `disconnected:` with no client), `pty:PATH`, `file`, `null`; `frontend-open` when a monitor or device uses it |
 * | `query-hotpluggable-cpus`, `query-cpus-fast` | the `-smp` topology, `-cpu` model; the vCPU's thread id is the simulator's own pid (a thread that exists, as libvirt pins and reads it) |
 * | `qom-list`, `qom-get` | a vCPU: the release's recording for the model (`profiles/qemu-V-vcpu-MODEL.jsonl`); `/machine/peripheral`: the devices with an id, in hash-table order; the balloon's `guest-stats` |
 * | `query-iothreads` | the `-object iothread`s |
 * | `query-named-block-nodes`, `query-block`, `query-blockstats` | the `-blockdev` nodes and the devices on them (sizes from the image file) |
 * | `query-uuid`, `query-jobs`, `query-stats`, `query-stats-schemas`, `query-dirty-rate` | the uuid; none; TCG has no stats; the recording |
 *
 * @module
 */
import { readdirSync, statSync } from "node:fs";
import type { JsonObject, JsonValue } from "../../base/json.js";
import { gHashTableOrder } from "../../server/index.js";
import { QmpReplyError } from "../../server/reply-error.js";
import {
  type BlockNodeConfig,
  type DomainConfig,
  emptyDomainConfig,
  nodeFilename,
  type SmpTopology,
  smpTopology,
} from "../domain-config.js";
import { recordedVcpuProfile } from "../recorded-profile.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { balloon } from "./balloon.js";
import { chardevs } from "./chardevs.js";
import { qdev } from "./qdev.js";

/**
 * The QOM path of vCPU `index` on a pc machine: the vCPUs are the first unattached devices, but
 * for the `kvmvapic` device that comes right after the first (device[1]); seen on 7.2.22 and
 * 10.0.2 with 2 and 4 vCPUs.
 */
export function vcpuQomPath(index: number): string {
  return `/machine/unattached/device[${index === 0 ? 0 : index + 1}]`;
}

/** Bits of an x86 APIC id a topology level takes (`apicid_bitwidth_for_count`). */
function bitsFor(count: number): number {
  return count <= 1 ? 0 : Math.ceil(Math.log2(count));
}

/** The domain state of one machine. */
export class Domain {
  readonly config: DomainConfig;
  readonly topology: SmpTopology;
  /** Whether the machine has vCPUs (`-machine none` has none). */
  readonly hasCpus: boolean;

  constructor(readonly host: ModuleHost) {
    this.config = host.devices.domain ?? emptyDomainConfig();
    this.topology = smpTopology(this.config.smp);
    this.hasCpus = (this.config.machineType ?? "none") !== "none";
  }

  /** `query-chardev` (chardev/char.c qmp_query_chardev: the /chardevs children, prepended). */
  queryChardev(): JsonObject[] {
    const sockets = this.host.get(chardevs);
    const used = new Set<string>();
    for (const p of this.config.peripherals)
      if (typeof p.props.chardev === "string") used.add(p.props.chardev);
    const byId = new Map(this.config.chardevs.map((c) => [c.id, c]));
    const infos = new Map<string, JsonObject>();
    for (const c of this.config.chardevs) {
      const socket = sockets.list.find((s) => s.id === c.id);
      let filename: string;
      if (c.backend === "socket") {
        const address = c.runtimePath ?? (c.path === undefined ? "" : `unix:${c.path}`);
        const suffix = c.server ? ",server=on" : "";
        filename = `${socket !== undefined && socket.streams.size > 0 ? "" : "disconnected:"}${address}${suffix}`;
      } else if (c.backend === "pty") {
        filename = `pty:${c.runtimePath ?? ""}`;
      } else {
        filename = c.backend;
      }
      infos.set(c.id, {
        label: c.id,
        filename,
        "frontend-open": socket !== undefined || used.has(c.id),
      });
    }
    return gHashTableOrder([...byId.keys()])
      .reverse()
      .map((id) => infos.get(id)!);
  }

  #requireCpus(): void {
    if (!this.hasCpus) {
      throw new QmpReplyError("GenericError", "machine does not support hot-plugging CPUs");
    }
  }

  #props(index: number): JsonObject {
    const t = this.topology;
    const threadId = index % t.threads;
    const coreId = Math.floor(index / t.threads) % t.cores;
    const dieId = Math.floor(index / (t.threads * t.cores)) % t.dies;
    const socketId = Math.floor(index / (t.threads * t.cores * t.dies));
    // CpuInstanceProperties in schema order; die-id only on a machine with dies.
    return t.dies > 1
      ? { "socket-id": socketId, "die-id": dieId, "core-id": coreId, "thread-id": threadId }
      : { "socket-id": socketId, "core-id": coreId, "thread-id": threadId };
  }

  /** The x86 APIC id of vCPU `index` (include/hw/i386/topology.h, x86_apicid_from_cpu_idx). */
  #apicId(index: number): number {
    const t = this.topology;
    const p = this.#props(index);
    const threadBits = bitsFor(t.threads);
    const coreBits = bitsFor(t.cores);
    const dieBits = bitsFor(t.dies);
    return (
      (Number(p["socket-id"]) << (dieBits + coreBits + threadBits)) |
      (Number(p["die-id"] ?? 0) << (coreBits + threadBits)) |
      (Number(p["core-id"]) << threadBits) |
      Number(p["thread-id"])
    );
  }

  #cpuType(): string {
    return `${this.config.cpuModel}-x86_64-cpu`;
  }

  /** `query-hotpluggable-cpus`: every slot, last first; the plugged ones with their QOM path. */
  hotpluggableCpus(): JsonObject[] {
    this.#requireCpus();
    const out: JsonObject[] = [];
    for (let i = this.topology.maxcpus - 1; i >= 0; i--) {
      const slot: JsonObject = { type: this.#cpuType(), "vcpus-count": 1, props: this.#props(i) };
      if (i < this.topology.cpus) slot["qom-path"] = vcpuQomPath(i);
      out.push(slot);
    }
    return out;
  }

  /** `query-cpus-fast`: the plugged vCPUs. */
  cpusFast(): JsonObject[] {
    if (!this.hasCpus) return [];
    const out: JsonObject[] = [];
    for (let i = 0; i < this.topology.cpus; i++) {
      out.push({
        "cpu-index": i,
        "qom-path": vcpuQomPath(i),
        "thread-id": vcpuThreadId(i),
        props: this.#props(i),
        target: "x86_64",
      });
    }
    return out;
  }

  #vcpuIndex(path: string): number | undefined {
    if (!this.hasCpus) return undefined;
    for (let i = 0; i < this.topology.cpus; i++) if (vcpuQomPath(i) === path) return i;
    return undefined;
  }

  #vcpuRecording() {
    const recording = recordedVcpuProfile(this.host.profile.id, this.config.cpuModel);
    if (recording === undefined) {
      throw new QmpReplyError(
        "GenericError",
        `qmpkit sim: no recorded QOM properties of CPU model '${this.config.cpuModel}' for QEMU ${this.host.profile.id} (recorded: qemu64)`,
      );
    }
    return recording;
  }

  /** The ids of `/machine/peripheral`'s children still plugged, in QOM's order. */
  #peripheralOrder(): string[] {
    const qdevs = this.host.get(qdev).qdevs;
    const ids = this.config.peripherals.map((p) => p.id);
    const removed = ids.filter((id) => qdevLost(qdevs, this.config, id));
    return gHashTableOrder(ids, removed);
  }

  /** `qom-list`. */
  qomList(path: string): JsonValue {
    if (this.#vcpuIndex(path) !== undefined) {
      return this.#vcpuRecording().answer("qom-list", { path: vcpuQomPath(0) });
    }
    if (path === "/machine/peripheral") {
      const drivers = new Map(this.config.peripherals.map((p) => [p.id, p.driver]));
      // qom/qom-qmp-cmds.c qmp_qom_list prepends: the class's `type` last visited, first listed.
      return [
        { name: "type", type: "string" },
        ...this.#peripheralOrder()
          .reverse()
          .map((id) => ({ name: id, type: `child<${drivers.get(id)}>` })),
      ];
    }
    if (this.#balloonId(path) !== undefined) {
      return this.recording().answer("qom-list", { path: "/machine/peripheral/balloon0" });
    }
    if (this.config.peripherals.some((p) => `/machine/peripheral/${p.id}` === path)) {
      throw new QmpReplyError(
        "GenericError",
        `qmpkit sim: the QOM properties of ${path} are not recorded (only vCPUs and the balloon are)`,
      );
    }
    throw new QmpReplyError("DeviceNotFound", `Device '${path}' not found`);
  }

  /** The balloon's id when `path` is its peripheral path and it is still plugged. */
  #balloonId(path: string): string | undefined {
    const id = /^\/machine\/peripheral\/([^/]+)$/.exec(path)?.[1];
    const device = this.config.peripherals.find((p) => p.id === id);
    const plugged = this.host.get(balloon).actual !== undefined;
    return device?.driver.startsWith("virtio-balloon") && plugged ? id : undefined;
  }

  /** `qom-get`. */
  qomGet(path: string, property: string): JsonValue {
    if (this.#vcpuIndex(path) !== undefined) {
      const recording = this.#vcpuRecording();
      const listed = recording.answer("qom-list", { path: vcpuQomPath(0) }) as JsonObject[];
      if (!listed.some((p) => p.name === property)) {
        // object_property_find_err (qom/object.c)
        throw new QmpReplyError(
          "GenericError",
          `Property '${this.#cpuType()}.${property}' not found`,
        );
      }
      const index = this.#vcpuIndex(path)!;
      if (index > 0) {
        // The recording is vCPU 0's: another vCPU differs in where it sits.
        const props = this.#props(index);
        if (property in props) return props[property]!;
        if (property === "apic-id") return this.#apicId(index);
      }
      return recording.answer("qom-get", { path: vcpuQomPath(0), property });
    }
    const id = /^\/machine\/peripheral\/([^/]+)$/.exec(path)?.[1];
    const device = this.config.peripherals.find((p) => p.id === id);
    if (this.#balloonId(path) !== undefined) {
      // The guest has no balloon driver: QEMU's answers before any statistics arrive.
      return this.recording().answer("qom-get", { path: "/machine/peripheral/balloon0", property });
    }
    if (device === undefined)
      throw new QmpReplyError("DeviceNotFound", `Device '${path}' not found`);
    throw new QmpReplyError(
      "GenericError",
      `qmpkit sim: the property '${property}' of ${device.driver} is not simulated`,
    );
  }

  /** The release's recording of a started domain (`qemu64`'s file: static answers). */
  recording() {
    const recording = recordedVcpuProfile(this.host.profile.id, "qemu64");
    if (recording === undefined) {
      throw new QmpReplyError(
        "GenericError",
        `qmpkit sim: QEMU ${this.host.profile.id} has no recording of a started domain (recorded: 7.2.22, 10.0.2)`,
      );
    }
    return recording;
  }

  /** A static answer of a started domain, from the release's recording. */
  recordingAnswer(execute: string): JsonValue {
    return this.recording().answer(execute, {});
  }

  /**
   * `query-blockstats`: each device's BlockBackend (or, with `query-nodes`, each node) with
   * the counters of an image no guest has touched (the recording's, before any I/O: the
   * simulated guest reads and writes nothing), the protocol node as `parent`.
   */
  blockstats(queryNodes: boolean): JsonObject[] {
    const recorded = this.recording().answer("query-blockstats", {}) as JsonObject[];
    const parent = recorded[0]?.parent as JsonObject;
    const backendStats = recorded[0]?.stats as JsonObject;
    const nodeStats = parent.stats as JsonObject;
    const driverSpecific = parent["driver-specific"] as JsonObject;
    const nodes = this.config.blockNodes;
    const nodeEntry = (node: BlockNodeConfig, stats: JsonObject): JsonObject => {
      const entry: JsonObject = { "node-name": node.nodeName, stats };
      const child = nodes.find((n) => n.nodeName === node.file);
      if (child !== undefined) entry.parent = nodeEntry(child, nodeStats);
      if (node.filename !== undefined) entry["driver-specific"] = { ...driverSpecific };
      return entry;
    };
    if (queryNodes) return nodes.map((n) => nodeEntry(n, nodeStats));
    return this.#disks().map(({ id, node }) => ({
      device: "",
      qdev: `/machine/peripheral/${id}/virtio-backend`,
      ...nodeEntry(node, backendStats),
    }));
  }

  /** `query-iothreads`: each `-object iothread` with QEMU's default polling parameters. */
  iothreads(): JsonObject[] {
    return this.config.objects
      .filter((o) => o.qomType === "iothread")
      .map((o) => ({
        id: o.id,
        "thread-id": process.pid,
        "poll-max-ns": 32768,
        "poll-grow": 0,
        "poll-shrink": 0,
        "aio-max-batch": 0,
      }));
  }

  /** BlockDeviceInfo of one node (block/qapi.c bdrv_block_device_info, a node without I/O limits). */
  #nodeInfo(node: BlockNodeConfig, writeback: boolean): JsonObject {
    const filename = nodeFilename(this.config.blockNodes, node) ?? "";
    let size = 0;
    let actual = 0;
    try {
      const st = statSync(filename);
      size = st.size;
      actual = st.blocks * 512;
    } catch {
      // The image went away after start: QEMU keeps the sizes it had; the simulator says 0.
    }
    const image: JsonObject = {
      filename,
      format: node.driver,
      "dirty-flag": false,
      "actual-size": actual,
      "virtual-size": size,
    };
    const profile = this.host.profile;
    if (node.driver === "file" && profile.has("file-node-format-specific")) {
      image["format-specific"] = { type: "file", data: {} };
    }
    const info: JsonObject = {
      file: filename,
      "node-name": node.nodeName,
      ro: node.readOnly,
      drv: node.driver,
      backing_file_depth: 0,
    };
    if (profile.has("block-node-active")) info.active = true;
    return {
      ...info,
      encrypted: false,
      detect_zeroes: "off",
      bps: 0,
      bps_rd: 0,
      bps_wr: 0,
      iops: 0,
      iops_rd: 0,
      iops_wr: 0,
      image,
      cache: { writeback, direct: false, "no-flush": false },
      write_threshold: 0,
    };
  }

  /** `query-named-block-nodes`: the nodes, most recently created first. */
  namedBlockNodes(): JsonObject[] {
    return [...this.config.blockNodes].reverse().map((n) => this.#nodeInfo(n, true));
  }

  #disks(): Array<{ id: string; node: BlockNodeConfig }> {
    const out: Array<{ id: string; node: BlockNodeConfig }> = [];
    for (const p of this.config.peripherals) {
      const node = this.config.blockNodes.find((n) => n.nodeName === p.props.drive);
      if (node !== undefined) out.push({ id: p.id, node });
    }
    return out;
  }

  /** `query-block`: the anonymous BlockBackends of the devices on `-blockdev` nodes. */
  queryBlock(): JsonObject[] {
    return this.#disks().map(({ id, node }) => ({
      device: "",
      qdev: `/machine/peripheral/${id}/virtio-backend`,
      type: "unknown",
      removable: false,
      locked: false,
      // virtio-blk starts with its write cache on; a guest driver that does not negotiate
      // flushes turns it off (SeaBIOS's does, after the first boot: 7.2.22 then says false).
      inserted: this.#nodeInfo(node, true),
      "io-status": "ok",
    }));
  }
}

/**
 * A thread of this process for vCPU `index`: never the main thread, because libvirt takes a
 * vCPU thread id equal to the process id for a QEMU that cannot place vCPUs (and then refuses
 * affinity and reports no vCPU times); real QEMU runs each vCPU in a thread of its own. The
 * simulator's threads are Node's (V8's workers, libuv's pool), which live as long as it does.
 */
export function vcpuThreadId(index: number): number {
  let tids: number[] = [];
  try {
    tids = readdirSync("/proc/self/task")
      .map(Number)
      .filter((t) => t !== process.pid)
      .sort((a, b) => a - b);
  } catch {
    // No /proc (not Linux): the process id is all there is.
  }
  return tids.length === 0 ? process.pid : tids[index % tids.length]!;
}

/** Whether a peripheral was unplugged (the qdev module tracks the ones it may unplug). */
function qdevLost(qdevs: ReadonlyMap<string, unknown>, config: DomainConfig, id: string): boolean {
  const tracked = config.peripherals.find((p) => p.id === id);
  return tracked !== undefined && qdevs.size > 0 && !qdevs.has(id) && trackedByQdev(tracked.driver);
}

/** The drivers the qdev module keeps (the others cannot be unplugged by the simulator). */
function trackedByQdev(driver: string): boolean {
  return !driver.startsWith("virtio-balloon");
}

/** The domain subsystem. */
export const domain: SimModule<Domain> = {
  name: "domain",
  create: (host) => new Domain(host),
  commands: {
    "query-chardev": (host) => host.get(domain).queryChardev(),
    "query-hotpluggable-cpus": (host) => host.get(domain).hotpluggableCpus(),
    "query-cpus-fast": (host) => host.get(domain).cpusFast(),
    "qom-list": (host, a) => host.get(domain).qomList(String(a.path)),
    "qom-get": (host, a) => host.get(domain).qomGet(String(a.path), String(a.property)),
    "query-iothreads": (host) => host.get(domain).iothreads(),
    "query-named-block-nodes": (host) => host.get(domain).namedBlockNodes(),
    "query-block": (host) => host.get(domain).queryBlock(),
    "query-uuid": (host) => ({
      UUID: host.get(domain).config.uuid ?? "00000000-0000-0000-0000-000000000000",
    }),
    "query-jobs": () => [],
    "query-blockstats": (host, a) => host.get(domain).blockstats(a["query-nodes"] === true),
    // TCG has no statistics providers (KVM's are the only ones libvirt asks for).
    "query-stats": () => [],
    "query-stats-schemas": (host) => host.get(domain).recordingAnswer("query-stats-schemas"),
    "query-dirty-rate": (host) => host.get(domain).recordingAnswer("query-dirty-rate"),
  },
};
