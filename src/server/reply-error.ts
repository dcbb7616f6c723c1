/**
 * The error a command handler throws to answer with a QMP error response.
 *
 * @module
 */
import { QmpError, type QmpErrorClass } from "../base/errors.js";

/**
 * Thrown by a command handler to answer `{"error": {"class": errorClass, "desc": desc}}`.
 * Anything else a handler throws is answered as a GenericError carrying the error's message,
 * and reported through `QmpServerOptions.onHandlerError`.
 *
 * @example
 * server.command("query-balloon", () => {
 *   throw new QmpReplyError("DeviceNotActive", "No balloon device has been activated");
 * });
 */
export class QmpReplyError extends QmpError {
  override name = "QmpReplyError";
  constructor(
    /** The QMP error class (`qapi/error.json`). */
    readonly errorClass: QmpErrorClass | (string & {}),
    /** The exact `desc` text the client receives. */
    readonly desc: string,
    options?: ErrorOptions,
  ) {
    super(`command failed: ${errorClass}: ${desc}`, options);
  }
}

/** Whether `e` is a {@link QmpReplyError} (checked by name, so two package copies agree). */
export const isQmpReplyError = (e: unknown): e is QmpReplyError =>
  e instanceof Error &&
  e.name === "QmpReplyError" &&
  typeof (e as QmpReplyError).errorClass === "string" &&
  typeof (e as QmpReplyError).desc === "string";
