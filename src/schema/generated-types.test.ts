/**
 * Type-level checks of the generated contract (`src/generated`): these fail at type-check time
 * (`tsc --noEmit`, run by CI), and the runtime test keeps the file in the suite.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type QmpCommandMap,
  type QmpEvent,
  type QmpEventMap,
  type QmpEventMessage,
  qmpEventNames,
  type RunState,
  RunStateValues,
  type ShutdownCause,
  type StatusInfo,
} from "../generated/index.js";

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

export type Checks = [
  Expect<Equal<QmpEventMap["STOP"], undefined>>,
  Expect<Equal<QmpEventMap["SHUTDOWN"]["reason"], ShutdownCause>>,
  Expect<Equal<QmpCommandMap["query-status"]["returns"], StatusInfo>>,
  Expect<Equal<QmpCommandMap["query-status"]["args"], Record<string, never>>>,
  Expect<Equal<StatusInfo["status"], RunState>>,
  Expect<Equal<(typeof RunStateValues)[number], RunState>>,
  Expect<Equal<Extract<QmpEvent, { event: "SHUTDOWN" }>, QmpEventMessage<"SHUTDOWN">>>,
  Expect<Equal<QmpEventMessage<"STOP">["data"], undefined>>,
];

/** Narrowing on `event` gives the data type: this compiles only if the union is discriminated. */
function reasonOf(e: QmpEvent): ShutdownCause | undefined {
  return e.event === "SHUTDOWN" ? e.data.reason : undefined;
}

test("should type events as a union discriminated on the name", () => {
  const e: QmpEvent = {
    event: "SHUTDOWN",
    data: { guest: true, reason: "guest-shutdown" },
    timestamp: { seconds: 1, microseconds: 2 },
  };
  assert.equal(reasonOf(e), "guest-shutdown");
  assert.ok(qmpEventNames.includes("SHUTDOWN"));
  assert.ok(RunStateValues.includes("running"));
});
