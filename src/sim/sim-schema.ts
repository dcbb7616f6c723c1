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
import type { Definition, SchemaModel } from "../schema/model.js";
import { parseSchemaText } from "../schema/parser.js";

/** The QAPI text (checked by {@link simDefinitions} on first use). */
export const SIM_SCHEMA = `
##
# @x-sim-guest:
#
# Make the simulated guest act: reset, power off, panic, crash,
# suspend, write to a serial port and so on.  Each action takes its
# own further arguments, so the command accepts members beyond the
# one listed, like device_add.
#
# @action: what the guest does
#
# Features:
#
# @unstable: a simulator control, not part of QEMU
##
{ 'command': 'x-sim-guest',
  'data': { 'action': 'str' },
  'gen': false,
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

let cached: readonly Definition[] | undefined;

/**
 * The commands of {@link SIM_SCHEMA} and the types they introduce (the built-ins left out: the
 * catalogue's model has them), ready to be appended to a catalogue model.
 */
export function simDefinitions(): readonly Definition[] {
  if (cached === undefined) {
    const model: SchemaModel = buildModel(parseSchemaText(SIM_SCHEMA, "sim.json"));
    cached = model.definitions.filter((d) => d.kind !== "builtin" && d.info.file === "sim.json");
  }
  return cached;
}
