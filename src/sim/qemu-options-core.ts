/**
 * What every part of the command-line parser shares: the error for a bad option and QEMU's
 * `key=value,…` splitting (`qemu-options.ts`, `domain-config.ts`).
 *
 * @module
 */
import { QmpError } from "../base/errors.js";

/** A bad command line. The message names the option, as QEMU's do. */
export class QemuOptionError extends QmpError {
  override name = "QemuOptionError";
  constructor(
    readonly option: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${option}: ${reason}`, options);
  }
}

/** Splits a QEMU option string `a=b,c=d` (`,,` is a literal comma). The first bare word is `""`'s value. */
export function splitQemuOpts(text: string): Array<[string, string | undefined]> {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === ",") {
      if (text[i + 1] === ",") {
        current += ",";
        i++;
      } else {
        parts.push(current);
        current = "";
      }
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts.map((p) => {
    const eq = p.indexOf("=");
    return eq < 0 ? [p, undefined] : [p.slice(0, eq), p.slice(eq + 1)];
  });
}
