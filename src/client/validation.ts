/**
 * Checking what the peer sends against the schema (`validate` of `QmpClient.connect`): which
 * validators, what an invalid reply does. Off unless asked for.
 *
 * @module
 */
import { ValidationError, type ValidationIssue } from "../base/errors.js";
import type { QmpValidators, ValidationOptions } from "./options.js";
import type { QmpEvent } from "./types.js";
import { bundledValidators, validatorsFromIntrospection } from "./validators.js";

/** The validation a client was asked for. */
export class Validation {
  /** The validators in use (`undefined`: nothing is checked, e.g. before the peer's schema). */
  #validators: QmpValidators | undefined;
  /** The validators come from the peer's own `query-qmp-schema`, at every (re)connection. */
  readonly fromPeer: boolean;
  readonly #mode: "lenient" | "strict";
  readonly #replies: boolean;
  readonly #events: boolean;
  readonly #rejectInvalid: boolean;

  constructor(option: boolean | ValidationOptions | undefined) {
    const v = option === true ? {} : option === false || option === undefined ? undefined : option;
    this.fromPeer = v?.validators === "peer";
    this.#validators =
      v === undefined || v.validators === "peer"
        ? undefined
        : v.validators === undefined || v.validators === "bundled"
          ? bundledValidators
          : v.validators;
    this.#mode = v?.mode ?? "lenient";
    this.#replies = v !== undefined && v.replies !== false;
    this.#events = v !== undefined && v.events !== false;
    this.#rejectInvalid = v?.onInvalid === "reject";
  }

  /** Forgets the peer's validators (a new connection may be a different QEMU). */
  forgetPeer(): void {
    if (this.fromPeer) this.#validators = undefined;
  }

  /** Builds the validators from the peer's `query-qmp-schema` answer (docs/design.md principle 3). */
  usePeerSchema(answer: unknown): void {
    this.#validators = validatorsFromIntrospection(answer);
  }

  /**
   * Checks a reply. Returns the error to reject the call with (`onInvalid: "reject"`); reports the
   * issues through `report` otherwise.
   */
  checkReply(
    command: string,
    value: unknown,
    report: (issues: readonly ValidationIssue[]) => void,
  ): ValidationError | undefined {
    if (!this.#replies || this.#validators === undefined) return undefined;
    const validator = this.#validators.returns(command);
    if (validator === undefined || validator.check(value, { mode: this.#mode })) return undefined;
    const issues = validator.errors(value, { mode: this.#mode });
    if (this.#rejectInvalid) return new ValidationError(`reply of ${command}`, issues);
    report(issues);
    return undefined;
  }

  /** The issues of an event's data, `undefined` when it is valid or not checked. */
  eventIssues(event: QmpEvent): readonly ValidationIssue[] | undefined {
    if (!this.#events || this.#validators === undefined) return undefined;
    const validator = this.#validators.event(event.event);
    if (validator === undefined || validator.check(event.data, { mode: this.#mode })) {
      return undefined;
    }
    return validator.errors(event.data, { mode: this.#mode });
  }
}
