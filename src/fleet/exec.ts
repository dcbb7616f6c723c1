/**
 * Commands through the agent (`qmpkit fleet exec HOST/VM COMMAND`): NATS request/reply on
 * `qmp.HOST.VM.exec`, the request a QMP command object (`{"execute", "arguments"?}`), the reply
 * a QMP reply (`{"return": …}` or `{"error": {"class", "desc"}}`). The agent owns the VM's one
 * monitor connection and runs the command on it only if its policy allows it: by default the
 * read-only `query-*` commands; `--allow` widens that. A refusal is a QMP-style error.
 *
 * @module
 */
import { isCommandError } from "../base/errors.js";
import { isJsonObject, type JsonObject } from "../base/json.js";
import { wildcardRegExp } from "../base/wildcard.js";
import type { QmpClient } from "../client/index.js";

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

/** A QMP-style reply. */
export type ExecReply =
  | { readonly return: unknown }
  | { readonly error: { readonly class: string; readonly desc: string } };

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
  error(errorClass: string, desc: string): ExecReply {
    return { error: { class: errorClass, desc } };
  },

  /** Runs a request (`{"execute", "arguments"?}`) as the policy allows; never throws. */
  async run(request: unknown, ctx: ExecContext): Promise<ExecReply> {
    if (!isJsonObject(request) || typeof request.execute !== "string")
      return execReply.error(
        "GenericError",
        'the request must be {"execute": NAME, "arguments"?: {...}}',
      );
    const command = request.execute;
    const args = request.arguments;
    if (args !== undefined && !isJsonObject(args))
      return execReply.error("GenericError", "'arguments' must be a JSON object");
    if (!ctx.policy.allows(command))
      return execReply.error(
        "GenericError",
        `the agent on ${ctx.host} does not run '${command}' for the fleet (allowed: ${ctx.policy.patterns.join(", ") || "nothing"}; widen with qmpkit agent --allow)`,
      );
    if (ctx.client === undefined)
      return execReply.error("GenericError", `${ctx.host}/${ctx.vm} is not connected to its agent`);
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
