/**
 * The schema of the simulator's own commands, `x-sim-guest` and `x-sim-inject`, in QAPI like the
 * catalogue, so that `query-qmp-schema` describes them the way QEMU describes its `x-`
 * experiments: listed, marked with the `unstable` feature (qapi/introspect.json documents the
 * feature for exactly this use).
 *
 * It stays out of `schema/qapi/`: the catalogue describes QEMU, and its introspection is compared
 * with a real QEMU's. The simulator adds these entries to its answer when it is not `strict`.
 *
 * @module
 */
import { buildModel } from "../schema/check.js";
import { compileValidators } from "../schema/dynamic.js";
import type { Definition, SchemaModel } from "../schema/model.js";
import { parseSchemaText } from "../schema/parser.js";
import type { Validator } from "../schema/validator.js";

/** The QAPI text (checked by {@link simDefinitions} on first use). */
export const SIM_SCHEMA = `
##
# @XSimGuestAction:
#
# What the simulated guest does (each action is a subsystem's: run
# control, watchdog, RTC, balloon, block, virtio-serial, NICs, qdev).
#
# @shutdown: ACPI S5 power-off
#
# @hibernate: ACPI S4: SUSPEND_DISK, then as @shutdown
#
# @reset: a guest reset (keyboard controller, 0xCF9, triple fault)
#
# @suspend: ACPI S3 (needs -machine pc)
#
# @panic: a pvpanic panic
#
# @crashloaded: pvpanic crash-loaded
#
# @pvshutdown: pvpanic shutdown (9.1+)
#
# @watchdog-expire: the watchdog expires
#
# @rtc-change: the guest sets its RTC
#
# @balloon-change: the balloon driver reports its size
#
# @io-error: an I/O error on a drive
#
# @tray-move: the guest opens or closes a drive's tray
#
# @serial-port: a virtio-serial port opens or closes
#
# @rx-filter-change: the guest reprograms a NIC's receive filter
#
# @unplug-ack: the guest ejects a hot-pluggable PCI device
##
{ 'enum': 'XSimGuestAction',
  'data': [ 'shutdown', 'hibernate', 'reset', 'suspend', 'panic',
            'crashloaded', 'pvshutdown', 'watchdog-expire', 'rtc-change',
            'balloon-change', 'io-error', 'tray-move', 'serial-port',
            'rx-filter-change', 'unplug-ack' ] }

##
# @XSimPanic:
#
# @info: the panic information (a GuestPanicInformation of the
#     simulated release)
##
{ 'struct': 'XSimPanic', 'data': { '*info': 'any' } }

##
# @XSimRtcChange:
#
# @offset: the new offset of the RTC in seconds (default 0)
##
{ 'struct': 'XSimRtcChange', 'data': { '*offset': 'int' } }

##
# @XSimBalloonChange:
#
# @actual: the size the balloon driver reports, in bytes
##
{ 'struct': 'XSimBalloonChange', 'data': { 'actual': 'int' } }

##
# @XSimIoOperation:
#
# @read: a read failed
#
# @write: a write failed
##
{ 'enum': 'XSimIoOperation', 'data': [ 'read', 'write' ] }

##
# @XSimIoError:
#
# @device: the drive
#
# @operation: what failed (default write)
#
# @nospace: the disk is full (default false)
#
# @reason: the error text (default from @nospace)
##
{ 'struct': 'XSimIoError',
  'data': { 'device': 'str', '*operation': 'XSimIoOperation',
            '*nospace': 'bool', '*reason': 'str' } }

##
# @XSimTrayMove:
#
# @device: the drive
#
# @open: whether the tray is open afterwards
##
{ 'struct': 'XSimTrayMove', 'data': { 'device': 'str', 'open': 'bool' } }

##
# @XSimSerialPort:
#
# @id: the port
#
# @open: whether the guest has it open afterwards
##
{ 'struct': 'XSimSerialPort', 'data': { 'id': 'str', 'open': 'bool' } }

##
# @XSimRxFilterChange:
#
# @nic: the NIC
##
{ 'struct': 'XSimRxFilterChange', 'data': { 'nic': 'str' } }

##
# @XSimUnplugAck:
#
# @id: the device
##
{ 'struct': 'XSimUnplugAck', 'data': { 'id': 'str' } }

##
# @XSimGuest:
#
# The arguments of @x-sim-guest: the action and its own members.
#
# @action: what the guest does
##
{ 'union': 'XSimGuest',
  'base': { 'action': 'XSimGuestAction' },
  'discriminator': 'action',
  'data': { 'panic': 'XSimPanic',
            'crashloaded': 'XSimPanic',
            'rtc-change': 'XSimRtcChange',
            'balloon-change': 'XSimBalloonChange',
            'io-error': 'XSimIoError',
            'tray-move': 'XSimTrayMove',
            'serial-port': 'XSimSerialPort',
            'rx-filter-change': 'XSimRxFilterChange',
            'unplug-ack': 'XSimUnplugAck' } }

##
# @x-sim-guest:
#
# Make the simulated guest act: reset, power off, panic, crash,
# suspend, write to a serial port and so on.  Each action takes its
# own members (@XSimGuest).
#
# Features:
#
# @unstable: a simulator control, not part of QEMU
##
{ 'command': 'x-sim-guest',
  'data': 'XSimGuest',
  'boxed': true,
  'features': [ 'unstable' ] }

##
# @x-sim-inject:
#
# Send an event as if a simulated device had raised it, after
# checking its data against the catalogue for the simulated release;
# events that follow from the run state are refused.
#
# @event: the event's name
#
# @data: the event's data (default: none)
#
# Features:
#
# @unstable: a simulator control, not part of QEMU
##
{ 'command': 'x-sim-inject',
  'data': { 'event': 'str', '*data': 'any' },
  'features': [ 'unstable' ] }
`;

let model: SchemaModel | undefined;
let cached: readonly Definition[] | undefined;

/** The model of {@link SIM_SCHEMA}, built on first use. */
function simModel(): SchemaModel {
  model ??= buildModel(parseSchemaText(SIM_SCHEMA, "sim.json"));
  return model;
}

/**
 * The commands of {@link SIM_SCHEMA} and the types they introduce (the built-ins left out: the
 * catalogue's model has them), ready to be appended to a catalogue model.
 */
export function simDefinitions(): readonly Definition[] {
  cached ??= simModel().definitions.filter(
    (d) => d.kind !== "builtin" && d.info.file === "sim.json",
  );
  return cached;
}

let validators: { guest: Validator<unknown>; inject: Validator<unknown> } | undefined;

/** The argument validators of `x-sim-guest` and `x-sim-inject`, compiled from {@link SIM_SCHEMA}. */
export function simCommandValidators(): { guest: Validator<unknown>; inject: Validator<unknown> } {
  if (validators === undefined) {
    const compiled = compileValidators(simModel());
    const of = (name: string) => {
      const v = compiled.commandArgs(name);
      if (v === undefined) throw new Error(`sim schema: no arguments for ${name}`);
      return v;
    };
    validators = { guest: of("x-sim-guest"), inject: of("x-sim-inject") };
  }
  return validators;
}

/** The `x-sim-guest` actions, in the schema's order. */
export function guestActionNames(): readonly string[] {
  const d = simModel().definitions.find((x) => x.name === "XSimGuestAction");
  return d?.kind === "enum" ? d.values.map((v) => v.name) : [];
}
