/**
 * NICs and their receive filters: `query-rx-filter`, NIC_RX_FILTER_CHANGED once until the next
 * `query-rx-filter` of that NIC. Only virtio-net reports and answers (hw/net/virtio-net.c).
 *
 * @module
 */
import type { JsonObject, JsonValue } from "../../base/json.js";
import { QmpReplyError } from "../../server/reply-error.js";
import type { ModuleHost, SimModule } from "../sim-module.js";
import { type QdevDevice, qdev } from "./qdev.js";

/** The NICs of one machine, by id: their place among the NICs made and their event latch. */
export class Nics {
  /** A NIC's place among all NICs created, which gives its default MAC. */
  readonly #macIndex = new Map<string, number>();
  /** NICs whose next filter change is reported (re-armed by `query-rx-filter`). */
  readonly #notify = new Set<string>();
  /** Host network backends (`-netdev` ids): net clients that are not NICs. */
  readonly netdevs: ReadonlySet<string>;

  constructor(readonly host: ModuleHost) {
    for (const nic of host.devices.nics ?? []) {
      const id = typeof nic === "string" ? nic : nic.id;
      this.#macIndex.set(id, this.#macIndex.size);
      this.#notify.add(id);
    }
    this.netdevs = new Set(host.devices.netdevs ?? []);
  }

  /** The NICs still plugged, in creation order. */
  #nics(): QdevDevice[] {
    const devices = this.host.get(qdev).qdevs;
    return [...devices.values()].filter((d) => this.#macIndex.has(d.id));
  }

  /**
   * `query-rx-filter {name?}`: re-arms NIC_RX_FILTER_CHANGED for the NICs it reports. Only
   * virtio-net answers it (net/net.c qmp_query_rx_filter: a NIC without the hook is an error when
   * named and skipped in the list, as an `e1000` on QEMU 7.2.22 and 10.0.2). The default MAC
   * counts every NIC created (net/net.c qemu_macaddr_default_if_unset), whatever its model.
   */
  queryRxFilter(name: string | undefined): JsonValue[] {
    const nics = this.#nics();
    let chosen = nics.filter(isVirtioNet);
    if (name !== undefined) {
      const named = nics.find((d) => d.id === name);
      if (named === undefined) {
        if (this.netdevs.has(name)) {
          throw new QmpReplyError("GenericError", `net client(${name}) isn't a NIC`);
        }
        throw new QmpReplyError("GenericError", `invalid net client name: ${name}`);
      }
      if (!isVirtioNet(named)) {
        throw new QmpReplyError(
          "GenericError",
          `net client(${name}) doesn't support rx-filter querying`,
        );
      }
      chosen = [named];
    }
    return chosen.map((d) => {
      this.#notify.add(d.id);
      return rxFilterInfo(d.id, this.#macIndex.get(d.id) ?? 0);
    });
  }

  /** The guest changed a NIC's receive filter: the event goes out once until the next query. */
  guestRxFilterChange(nic: string): void {
    this.host.core.assertGuestRunning("rx-filter change");
    const d = this.#nics().find((x) => x.id === nic);
    if (d === undefined) {
      throw new QmpReplyError("GenericError", `invalid net client name: ${nic}`);
    }
    // Only virtio-net reports filter changes (hw/net/virtio-net.c rxfilter_notify).
    if (!isVirtioNet(d)) {
      throw new QmpReplyError("GenericError", `net client(${nic}) has no rx-filter events`);
    }
    if (!this.#notify.delete(nic)) return;
    this.host.emit("NIC_RX_FILTER_CHANGED", {
      name: nic,
      path: `/machine/peripheral/${nic}/virtio-backend`,
    });
  }
}

/** Whether a NIC is a virtio-net one (the only model with rx-filter querying and events). */
function isVirtioNet(d: QdevDevice): boolean {
  return d.driver.startsWith("virtio-net");
}

/** A virtio-net NIC's filter as 7.2.22 reports it before the guest programs it. */
function rxFilterInfo(name: string, index: number): JsonObject {
  const mac = `52:54:00:12:34:${(0x56 + index).toString(16).padStart(2, "0")}`;
  return {
    name,
    promiscuous: true,
    multicast: "normal",
    unicast: "normal",
    vlan: "all",
    "broadcast-allowed": false,
    "multicast-overflow": false,
    "unicast-overflow": false,
    "main-mac": mac,
    "vlan-table": Array.from({ length: 4096 }, (_, i) => 4095 - i),
    "unicast-table": [],
    "multicast-table": [],
  };
}

/** The NIC subsystem. */
export const nics: SimModule<Nics> = {
  name: "nics",
  create: (host) => new Nics(host),
  commands: {
    "query-rx-filter": (host, a) =>
      host.get(nics).queryRxFilter(typeof a.name === "string" ? a.name : undefined),
  },
  guestActions: {
    "rx-filter-change": (host, a) => host.get(nics).guestRxFilterChange(String(a.nic)),
  },
};
