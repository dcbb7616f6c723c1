/**
 * Connecting to NATS: the server URLs checked up front (a malformed one is a clear error, not a
 * hang), credentials (user and password, a token, an nkey seed, a credentials file; TLS when a
 * CA, certificate or `tls://` is given) handed to the official client, and errors described
 * without secrets: a URL's `user:password@` part is never repeated in a message.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import { QmpError } from "../base/errors.js";

/** A fleet failure: bad NATS options, an unreachable server, a refused permission. */
export class FleetError extends QmpError {
  override name = "FleetError";
}

/** How to reach NATS and who to be there. Secrets stay out of every message and log. */
export interface FleetConnectOptions {
  /** One or more server URLs (`nats://HOST:PORT`, `tls://…`, or `HOST:PORT`), comma-separated in a string. */
  readonly servers: string | readonly string[];
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly token?: string | undefined;
  /** An nkey seed (`SU…`), or the path of a file holding one. */
  readonly nkey?: string | undefined;
  /** A `.creds` file (a JWT and its nkey seed), as `nsc` writes them. */
  readonly credsFile?: string | undefined;
  /** TLS: the CA to trust, and a client certificate and key (paths). */
  readonly tlsCa?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  /** The connection's name, as the server shows it. */
  readonly name?: string | undefined;
  /** Time to connect (ms). Default 5 000. */
  readonly timeoutMs?: number | undefined;
  /** Reconnect forever after a drop (default true). */
  readonly reconnect?: boolean | undefined;
}

/**
 * The server URLs of `servers`, checked: a scheme of `nats`, `tls`, `ws` or `wss` (or none), a
 * host, and a port in 1..65535. Throws `FleetError` naming the bad value (its credentials hidden).
 */
export function parseServers(servers: FleetConnectOptions["servers"]): string[] {
  const list = (typeof servers === "string" ? servers.split(",") : [...servers])
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (list.length === 0) throw new FleetError("no NATS server URL given");
  return list.map((text) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats://${text}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new FleetError(`invalid NATS URL '${redactUrl(text)}': expected nats://HOST:PORT`);
    }
    if (!["nats:", "tls:", "ws:", "wss:"].includes(url.protocol))
      throw new FleetError(
        `invalid NATS URL '${redactUrl(text)}': the scheme must be nats://, tls://, ws:// or wss://`,
      );
    if (url.hostname === "") throw new FleetError(`invalid NATS URL '${redactUrl(text)}': no host`);
    if (url.pathname !== "" && url.pathname !== "/")
      throw new FleetError(`invalid NATS URL '${redactUrl(text)}': a NATS URL has no path`);
    if (url.port !== "" && (Number(url.port) < 1 || Number(url.port) > 65535))
      throw new FleetError(`invalid NATS URL '${redactUrl(text)}': port out of range`);
    return withScheme;
  });
}

/** The URL with any `user:password@` replaced by `***@`. */
export function redactUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^@/]*@/i, (_m, scheme: string | undefined) => {
    return `${scheme ?? ""}***@`;
  });
}

/** The servers for messages: URLs without credentials. */
export function serversText(servers: FleetConnectOptions["servers"]): string {
  return (typeof servers === "string" ? servers.split(",") : [...servers])
    .map((s) => redactUrl(s.trim()))
    .join(",");
}

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new FleetError(`cannot read the ${what} ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The client's connection options for `options` (credentials read from their files). */
export function natsConnectionOptions(options: FleetConnectOptions): ConnectionOptions {
  const servers = parseServers(options.servers);
  const out: ConnectionOptions = {
    servers,
    name: options.name ?? "qmpkit",
    timeout: options.timeoutMs ?? 5000,
    reconnect: options.reconnect !== false,
    maxReconnectAttempts: options.reconnect === false ? 0 : -1,
    reconnectTimeWait: 250,
    // The client's exceptions would carry stack traces of no use to the reader.
    noAsyncTraces: true,
  };
  if (options.user !== undefined) out.user = options.user;
  if (options.password !== undefined) out.pass = options.password;
  if (options.token !== undefined) out.token = options.token;
  if (options.nkey !== undefined) {
    const seed = /^S[A-Z0-9]{50,}$/.test(options.nkey)
      ? options.nkey
      : readSecretFile(options.nkey, "nkey seed file");
    out.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (options.credsFile !== undefined) {
    out.authenticator = credsAuthenticator(
      new TextEncoder().encode(readSecretFile(options.credsFile, "credentials file")),
    );
  }
  const tlsWanted =
    options.tlsCa !== undefined ||
    options.tlsCert !== undefined ||
    servers.some((s) => s.startsWith("tls://") || s.startsWith("wss://"));
  if (tlsWanted) {
    out.tls = {
      ...(options.tlsCa === undefined ? {} : { caFile: options.tlsCa }),
      ...(options.tlsCert === undefined ? {} : { certFile: options.tlsCert }),
      ...(options.tlsKey === undefined ? {} : { keyFile: options.tlsKey }),
    };
  }
  return out;
}

/**
 * Why a NATS call failed, in one line without secrets (the client's own messages name the
 * server, never the password; a URL in them is redacted anyway).
 */
export function describeNatsError(error: unknown): string {
  const e = error as Error & { code?: string };
  let text = e?.message ?? String(error);
  if (e?.code === "ECONNREFUSED" || /ECONNREFUSED/.test(text)) text = "connection refused";
  return redactUrl(text.replace(/\s+/g, " ").trim());
}

/**
 * Connects to NATS; throws `FleetError` with a clear message when the URL is malformed, the
 * server cannot be reached in time, or it refuses the credentials.
 */
export async function connectNats(options: FleetConnectOptions): Promise<NatsConnection> {
  const connection = natsConnectionOptions(options);
  try {
    return await connect(connection);
  } catch (error) {
    throw new FleetError(
      `cannot connect to NATS at ${serversText(options.servers)}: ${describeNatsError(error)}`,
      { cause: error },
    );
  }
}
