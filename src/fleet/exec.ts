/**
 * Commands through the agent (`qmpkit fleet exec HOST/VM COMMAND`): NATS request/reply on
 * `qmp.HOST.VM.exec`, the request a QMP command object (`{"execute", "arguments"?}`), the reply
 * a QMP reply (`{"return": …}` or `{"error": {"class", "desc"}}`). The agent owns the VM's one
 * monitor connection and runs the command on it only if its policy allows it: by default the
 * read-only `query-*` commands; `--allow` widens that. A refusal is a QMP-style error.
 *
 * The agent's own errors carry a `reason` beside QMP's `class` and `desc` (`refused`: its
 * policy does not allow the command; `unavailable`: the VM is not connected to it now;
 * `invalid`: the request is malformed); QEMU's errors, passed on as QEMU sent them, have none.
 * Readers that know only QMP ignore it; the dashboard answers a `refused` with HTTP 403.
 *
 * {@link requestExec} is the requesting side, shared by `qmpkit fleet exec` and the dashboard.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { isCommandError } from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";
import { wildcardRegExp } from "../base/wildcard.js";
import type { QmpClient } from "../client/index.js";
import { describeNatsError, FleetError } from "./connection.js";
import { DEFAULT_SUBJECT_PREFIX, vmSubjects } from "./subjects.js";

/** The default: read-only commands only. */
export const DEFAULT_ALLOW: readonly string[] = ["query-*"];

/** Which commands the agent runs for the fleet. */
export interface CommandPolicy {
  readonly patterns: readonly string[];
  allows(command: string): boolean;
}

/** The policy of `allow` (names with `*` and `?` wildcards, comma-separated items allowed). */
export function commandPolicy(allow: readonly string[] | undefined = DEFAULT_ALLOW): CommandPolicy {
  const patterns = allow
    .flatMap((a) => a.split(","))
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const res = patterns.map((p) => wildcardRegExp(p));
  return { patterns, allows: (command) => res.some((re) => re.test(command)) };
}

/** Why the agent itself answered with an error (QEMU's errors have no reason). */
export type ExecErrorReason = "refused" | "unavailable" | "invalid";

/** A QMP-style reply. */
export type ExecReply =
  | { readonly return: unknown }
  | {
      readonly error: {
        readonly class: string;
        readonly desc: string;
        readonly reason?: ExecErrorReason;
      };
    };

/** What `run` needs. */
export interface ExecContext {
  readonly policy: CommandPolicy;
  readonly host: string;
  readonly vm: string;
  /** The VM's monitor connection, when connected. */
  readonly client: QmpClient | undefined;
  /** Time for QEMU's answer (ms). Default 10 000. */
  readonly timeoutMs?: number | undefined;
}

export const execReply = {
  /** An error: QEMU's (no `reason`), or the agent's own. */
  error(errorClass: string, desc: string, reason?: ExecErrorReason): ExecReply {
    return { error: { class: errorClass, desc, ...(reason === undefined ? {} : { reason }) } };
  },

  /** Runs a request (`{"execute", "arguments"?}`) as the policy allows; never throws. */
  async run(request: unknown, ctx: ExecContext): Promise<ExecReply> {
    if (!isJsonObject(request) || typeof request.execute !== "string")
      return execReply.error(
        "GenericError",
        'the request must be {"execute": NAME, "arguments"?: {...}}',
        "invalid",
      );
    const command = request.execute;
    const args = request.arguments;
    if (args !== undefined && !isJsonObject(args))
      return execReply.error("GenericError", "'arguments' must be a JSON object", "invalid");
    if (!ctx.policy.allows(command))
      return execReply.error(
        "GenericError",
        `the agent on ${ctx.host} does not run '${command}' for the fleet (allowed: ${ctx.policy.patterns.join(", ") || "nothing"}; widen with qmpkit agent --allow)`,
        "refused",
      );
    if (ctx.client === undefined)
      return execReply.error(
        "GenericError",
        `${ctx.host}/${ctx.vm} is not connected to its agent`,
        "unavailable",
      );
    try {
      const result = await ctx.client.executeUnchecked(command, args as JsonObject | undefined, {
        timeoutMs: ctx.timeoutMs ?? 10_000,
      });
      return { return: result ?? {} };
    } catch (error) {
      if (isCommandError(error)) return execReply.error(String(error.errorClass), error.desc);
      return execReply.error("GenericError", `${command} failed: ${(error as Error).message}`);
    }
  },
};

/** Options of {@link requestExec}. */
export interface RequestExecOptions {
  /** Time for the agent's answer (ms). Default 10 000. */
  readonly timeoutMs?: number | undefined;
  /** The subjects' first token. Default `qmp`. */
  readonly subjectPrefix?: string | undefined;
}

/**
 * Asks the agent of `host` to run `command` on `vm` (request/reply on `PREFIX-exec.HOST.VM`);
 * resolves with its QMP-style reply, errors included (the caller decides what a refusal means
 * to it).
 *
 * @throws FleetError when no agent answers for the VM, the answer does not come in time, NATS
 *   refuses the request (a user without the right to publish on `qmp-exec.>`), or the answer is
 *   not a QMP reply.
 */
export async function requestExec(
  nc: NatsConnection,
  target: { readonly host: string; readonly vm: string },
  command: string,
  args?: JsonObject | undefined,
  options: RequestExecOptions = {},
): Promise<ExecReply> {
  const { host, vm } = target;
  const subject = vmSubjects(host, vm, options.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX).exec;
  let reply: unknown;
  try {
    const msg = await nc.request(
      subject,
      JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }) }),
      { timeout: options.timeoutMs ?? 10_000 },
    );
    reply = msg.json();
  } catch (error) {
    const why = describeNatsError(error);
    throw new FleetError(
      /no responders/i.test(why)
        ? `no agent answers for ${host}/${vm} (${subject}): is 'qmpkit agent --host ${host}' running?`
        : `${command} on ${host}/${vm}: ${why}`,
      { cause: error },
    );
  }
  if (isJsonObject(reply) && isJsonObject(reply.error)) {
    const { class: errorClass, desc, reason } = reply.error;
    return execReply.error(
      String(errorClass),
      String(desc),
      reason === "refused" || reason === "unavailable" || reason === "invalid" ? reason : undefined,
    );
  }
  if (!isJsonObject(reply) || !("return" in reply))
    throw new FleetError(`${command} on ${host}/${vm}: the agent's answer is not a QMP reply`);
  return { return: reply.return ?? {} };
}
