/**
 * Validation benchmark (issue 3 §5): event ingest with the generated validators against the
 * same ingest without them, side by side in one run. Goal: validation adds under 20%.
 *
 * Ingest is what a client does with bytes from QEMU: `JsonStreamDecoder` (client dialect) over
 * 64 KiB chunks, then each message mapped to an event. The validating side also checks every
 * event's data with `eventValidators[name]` (lenient, as the client does). Rounds alternate so
 * that machine noise hits both sides alike; the figures are medians.
 *
 * A third side checks the same data with validators built at run time from the peer's own
 * `query-qmp-schema` answer (`validatorsFromIntrospection`, the client's `validators: "peer"`),
 * to show what the runtime path costs next to the generated one.
 *
 * The mix is a busy VM's (`busyVmEvents` in `bench/support/events.ts`, shared with the ingest
 * benchmark). Every message is valid, so the validators do their full work and never take an
 * error path.
 *
 * Run: `npx tsx bench/validation.ts [events] [rounds]`.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { isJsonObject } from "../src/base/json.js";
import { validatorsFromIntrospection } from "../src/client/validators.js";
import { eventValidators, qemuSchema } from "../src/generated/index.js";
import type { Validator } from "../src/schema/validator.js";
import { JsonStreamDecoder } from "../src/wire/index.js";
import { busyVmEvents, median } from "./support/events.js";

/** What one run measured. */
export interface ValidationBenchResult {
  readonly events: number;
  readonly rounds: number;
  /** Median milliseconds to ingest every event without validation. */
  readonly plainMs: number;
  /** Median milliseconds with validation. */
  readonly validatedMs: number;
  /** Median milliseconds with validators built from the peer's `query-qmp-schema`. */
  readonly peerMs: number;
  /** `validatedMs / plainMs - 1`: the share validation adds (medians). */
  readonly overhead: number;
  /** The same from each side's fastest round: noise only ever adds time, so this is the steadier figure on a busy machine. */
  readonly overheadBest: number;
  /** `peerMs / plainMs - 1`: the share validation with the peer's schema adds (medians). */
  readonly peerOverhead: number;
}

const validatorsByName = eventValidators as unknown as Readonly<Record<string, Validator<unknown>>>;
const generatedEvent = (name: string): Validator<unknown> | undefined => validatorsByName[name];
const peer = validatorsFromIntrospection(qemuSchema.introspect("10.0.0"));
const peerEvent = (name: string): Validator<unknown> | undefined => peer.event(name);

type Lookup = (name: string) => Validator<unknown> | undefined;

/** Ingest `bytes`; with `validate`, check each event's data. Returns the events accepted. */
function ingest(bytes: Uint8Array, validate: Lookup | undefined): number {
  const decoder = new JsonStreamDecoder({ dialect: "client" });
  const chunk = 64 * 1024;
  let accepted = 0;
  for (let at = 0; at <= bytes.length; at += chunk) {
    const items = at < bytes.length ? decoder.push(bytes.subarray(at, at + chunk)) : decoder.end();
    for (const item of items) {
      if (item.kind !== "value" || !isJsonObject(item.value)) continue;
      const name = item.value.event;
      if (typeof name !== "string") continue;
      if (validate !== undefined) {
        const v = validate(name);
        if (v !== undefined && !v.check(item.value.data, { mode: "lenient" })) continue;
      }
      accepted++;
    }
  }
  return accepted;
}

/** Run the benchmark: `events` per round, `rounds` alternating rounds per side. */
export function runValidationBench(events = 30_000, rounds = 21): ValidationBenchResult {
  const bytes = busyVmEvents(events);
  // Both sides must accept every event, or the comparison would be between different work.
  if (
    ingest(bytes, generatedEvent) !== events ||
    ingest(bytes, peerEvent) !== events ||
    ingest(bytes, undefined) !== events
  ) {
    throw new Error("validation benchmark: some events of the mix are not valid for the catalogue");
  }
  const plain: number[] = [];
  const validated: number[] = [];
  const peerValidated: number[] = [];
  const sides: [Lookup | undefined, number[]][] = [
    [undefined, plain],
    [generatedEvent, validated],
    [peerEvent, peerValidated],
  ];
  for (let r = 0; r < rounds; r++) {
    // Each round starts with another side, so that machine noise hits every side alike.
    for (let k = 0; k < sides.length; k++) {
      const [validate, times] = sides[(r + k) % sides.length]!;
      const t0 = performance.now();
      ingest(bytes, validate);
      times.push(performance.now() - t0);
    }
  }
  const plainMs = median(plain);
  const validatedMs = median(validated);
  const peerMs = median(peerValidated);
  return {
    events,
    rounds,
    plainMs,
    validatedMs,
    peerMs,
    overhead: validatedMs / plainMs - 1,
    overheadBest: Math.min(...validated) / Math.min(...plain) - 1,
    peerOverhead: peerMs / plainMs - 1,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const events = Number(process.argv[2] ?? 30_000);
  const rounds = Number(process.argv[3] ?? 21);
  const r = runValidationBench(events, rounds);
  const rate = (ms: number) => Math.round((r.events / ms) * 1000).toLocaleString("en-US");
  console.log(`validation bench: ${r.events} events, ${r.rounds} rounds each side (medians)`);
  console.log(
    `  ingest without validation: ${r.plainMs.toFixed(1)} ms (${rate(r.plainMs)} events/s)`,
  );
  console.log(
    `  ingest with validation:    ${r.validatedMs.toFixed(1)} ms (${rate(r.validatedMs)} events/s)`,
  );
  console.log(
    `  with the peer's schema:    ${r.peerMs.toFixed(1)} ms (${rate(r.peerMs)} events/s), adds ${(r.peerOverhead * 100).toFixed(1)}%`,
  );
  console.log(
    `  validation adds ${(r.overhead * 100).toFixed(1)}% (medians), ${(r.overheadBest * 100).toFixed(1)}% (fastest rounds); goal: under 20%`,
  );
}
