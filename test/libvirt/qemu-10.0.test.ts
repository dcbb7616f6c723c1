/**
 * libvirt 9.0 drives real QEMU 10.0.2 (unpacked beside 7.2 by .ci/install-qemu-10) and
 * qmpkit-qemu's 10.0.2 profile through the same domains and `virsh` steps (docs/libvirt.md).
 */
import { QEMU_10 } from "../support/real-qemu.js";
import { libvirtComparison } from "./compare.js";

libvirtComparison(QEMU_10, "10.0.2", []);
