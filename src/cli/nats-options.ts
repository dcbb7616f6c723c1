/**
 * The NATS options shared by `qmpkit agent` and `qmpkit fleet …`: where the servers are and the
 * credentials, turned into the fleet layer's `FleetConnectOptions`. Secrets are taken from files
 * or the environment, never from the command line (where `ps` shows them to everyone), and never
 * printed.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { FleetConnectOptions } from "../fleet/index.js";
import type { CliIo } from "./io.js";
import { UsageError } from "./usage-error.js";

/** The default server when neither `--nats` nor `QMPKIT_NATS_URL` says one. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** The NATS options as commander hands them over. */
export interface NatsCliOptions {
  readonly nats?: string | undefined;
  readonly user?: string | undefined;
  readonly passwordFile?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly nkey?: string | undefined;
  readonly creds?: string | undefined;
  readonly tlsCa?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
}

export const natsHelp = `
NATS: --nats takes one or more comma-separated URLs (nats://HOST:PORT, tls://HOST:PORT; default
$QMPKIT_NATS_URL, else ${DEFAULT_NATS_URL}). Credentials, never on the command line:
--user NAME with the password in --password-file FILE or $QMPKIT_NATS_PASSWORD; a token in
--token-file FILE or $QMPKIT_NATS_TOKEN; --nkey SEEDFILE; --creds FILE (JWT + seed, as nsc
writes them). TLS with --tls-ca (and --tls-cert/--tls-key for a client certificate), or a
tls:// URL. Secrets are never printed.`;

/** Adds the NATS options to `command`. */
export function addNatsOptions(command: Command): Command {
  return command
    .option("--nats <urls>", "NATS server URL(s), comma-separated (default $QMPKIT_NATS_URL)")
    .option("--user <name>", "NATS user (password: --password-file or $QMPKIT_NATS_PASSWORD)")
    .option("--password-file <file>", "file holding the NATS user's password")
    .option("--token-file <file>", "file holding a NATS token (or $QMPKIT_NATS_TOKEN)")
    .option("--nkey <seedfile>", "file holding an nkey seed (SU...)")
    .option("--creds <file>", "NATS credentials file (JWT and seed)")
    .option("--tls-ca <file>", "CA certificate to trust (turns on TLS)")
    .option("--tls-cert <file>", "client certificate (TLS)")
    .option("--tls-key <file>", "client certificate's key (TLS)");
}

function secretFile(path: string, option: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new UsageError(`cannot read ${option} ${path}: ${(error as Error).message}`);
  }
}

/** The fleet layer's connection options for the command line's; `UsageError` for bad ones. */
export function natsConnectOptions(io: CliIo, opts: NatsCliOptions): FleetConnectOptions {
  const servers = opts.nats ?? io.env.QMPKIT_NATS_URL ?? DEFAULT_NATS_URL;
  const password =
    opts.passwordFile !== undefined
      ? secretFile(opts.passwordFile, "--password-file")
      : io.env.QMPKIT_NATS_PASSWORD;
  const token =
    opts.tokenFile !== undefined
      ? secretFile(opts.tokenFile, "--token-file")
      : io.env.QMPKIT_NATS_TOKEN;
  const user = opts.user ?? io.env.QMPKIT_NATS_USER;
  if (password !== undefined && user === undefined)
    throw new UsageError("a NATS password needs a user (--user or $QMPKIT_NATS_USER)");
  if (opts.tlsKey !== undefined && opts.tlsCert === undefined)
    throw new UsageError("--tls-key needs --tls-cert");
  return {
    servers,
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
    ...(token === undefined ? {} : { token }),
    ...(opts.nkey === undefined ? {} : { nkey: opts.nkey }),
    ...(opts.creds === undefined ? {} : { credsFile: opts.creds }),
    ...(opts.tlsCa === undefined ? {} : { tlsCa: opts.tlsCa }),
    ...(opts.tlsCert === undefined ? {} : { tlsCert: opts.tlsCert }),
    ...(opts.tlsKey === undefined ? {} : { tlsKey: opts.tlsKey }),
  };
}
