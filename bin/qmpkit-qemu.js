#!/usr/bin/env node
// A stand-in for qemu-system-x86_64: takes QEMU's command line and runs the qmpkit simulator
// (see src/cli/qemu-main.ts). Point software that spawns QEMU at this binary.
import { qemuMain } from "../dist/cli/qemu-main.js";

process.exitCode = await qemuMain(process.argv.slice(2));
