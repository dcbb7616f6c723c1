/**
 * Listen addresses of the dashboard and the metrics server: `HOST:PORT`, `[IPV6]:PORT`, or a
 * bare `PORT` (loopback), and whether an address is loopback only (then no token is needed).
 *
 * @module
 */
import { isIP } from "node:net";
import { QmpError } from "../base/errors.js";

/** A host and port to listen on. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** A listen address that cannot be read (the text is in the message). */
export class ListenAddressError extends QmpError {
  override name = "ListenAddressError";
}

/**
 * Reads `127.0.0.1:8470`, `[::1]:8470`, `0.0.0.0:8470`, `localhost:0` or `8470`.
 *
 * @throws ListenAddressError naming the text when it is none of these.
 */
export function parseListenAddress(text: string): ListenAddress {
  const trimmed = text.trim();
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(trimmed);
  const bare = /^\d+$/.test(trimmed);
  const port = bare ? Number(trimmed) : m ? Number(m[3]) : Number.NaN;
  if ((!m && !bare) || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new ListenAddressError(
      `invalid listen address '${text}': expected HOST:PORT (127.0.0.1:8470, [::1]:8470) or PORT`,
    );
  const v6 = m?.[1];
  const host = v6 ?? (m?.[2] || "127.0.0.1");
  if (v6 !== undefined && isIP(v6) !== 6)
    throw new ListenAddressError(`invalid listen address '${text}': ${v6} is not an IPv6 address`);
  return { host, port };
}

/** `HOST:PORT`, IPv6 hosts in brackets. */
export function formatListenAddress(address: ListenAddress): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

/** Whether only this machine can reach the address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
