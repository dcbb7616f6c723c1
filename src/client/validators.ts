/**
 * Where the client's reply and event validators come from:
 *
 * - {@link bundledValidators}: the generated ones (`src/generated`), from the project's schema;
 * - {@link validatorsFromIntrospection}: built at run time from the peer's own
 *   `query-qmp-schema` answer (docs/design.md principle 3: "the client can check messages against
 *   the peer's own query-qmp-schema"), so a QEMU newer or older than the bundled schema is
 *   checked against what it says it speaks.
 *
 * Both are the schema layer's one validator engine: the answer becomes a model
 * (`modelFromIntrospection`), and `compileValidators` builds from it the functions the code
 * generator writes ahead of time, over the same runtime checks (`schema/runtime.ts`). So the
 * issues are the same in kind, path, order and wording whichever source is chosen.
 *
 * @module
 */
import { ProtocolError } from "../base/errors.js";
import type { JsonValue } from "../base/json.js";
import { commandValidators, eventValidators } from "../generated/index.js";
import { compileValidators, type SchemaValidators } from "../schema/dynamic.js";
import { modelFromIntrospection } from "../schema/introspect.js";
import type { Validator } from "../schema/validator.js";
import type { QmpValidators } from "./options.js";

/** The generated validators of every command's reply and every event's data. */
export const bundledValidators: QmpValidators = {
  returns(command) {
    const table = commandValidators as Record<string, { readonly returns: Validator<unknown> }>;
    return Object.hasOwn(table, command) ? table[command]!.returns : undefined;
  },
  event(name) {
    const table = eventValidators as Record<string, Validator<unknown>>;
    return Object.hasOwn(table, name) ? table[name] : undefined;
  },
};

/**
 * Validators built from a peer's `query-qmp-schema` answer.
 * @throws ProtocolError when the answer is not a list of `SchemaInfo` objects, or names a type
 * it does not define.
 */
export function validatorsFromIntrospection(reply: unknown): QmpValidators {
  let validators: SchemaValidators;
  try {
    validators = compileValidators(modelFromIntrospection(reply as JsonValue));
  } catch (error) {
    // modelFromIntrospection's TypeError says what is wrong with the answer.
    throw new ProtocolError((error as Error).message, reply, { cause: error });
  }
  return {
    returns: (command) => validators.commandReturns(command),
    event: (name) => validators.event(name),
  };
}
