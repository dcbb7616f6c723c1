/**
 * libvirt 9.0 drives real QEMU 7.2.22 (the system's) and qmpkit-qemu's 7.2.22 profile through
 * the same domains and `virsh` steps; what libvirt saw must be the same (docs/libvirt.md).
 */
import { SYSTEM_QEMU } from "../support/real-qemu.js";
import { libvirtComparison } from "./compare.js";

libvirtComparison(SYSTEM_QEMU, "7.2.22", []);
