/**
 * Where the dashboard's VMs come from, and how its actions reach them.
 *
 * - A {@link VmSource} feeds the journal (the dashboard reads everything from the journal, live
 *   and history alike): the local watch (`qmpkit dashboard TARGET…`, the same watch as `events
 *   --follow`, wired up by the CLI), or the fleet (NATS JetStream: every host's agent publishes
 *   to the stream `QMP`; a fleet source consumes it and writes each message to the journal with
 *   its host, `Journal.vm({host, name, address})`).
 * - {@link VmActions} runs an action on a VM. {@link LocalActions} sends it on the watch's own
 *   client (a QEMU `-qmp` socket serves one client at a time); a fleet implementation sends it
 *   through the agent that owns the VM's monitor, which may refuse it: a refusal is an
 *   {@link ActionError} with status 403 and the agent's words.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import type { QmpClient } from "../client/index.js";

/** The actions the dashboard offers, as the QMP commands they are. */
export const VM_ACTIONS = ["stop", "cont", "system_reset", "system_powerdown", "quit"] as const;
export type VmAction = (typeof VM_ACTIONS)[number];

/** Whether `name` is one of {@link VM_ACTIONS}. */
export function isVmAction(name: string): name is VmAction {
  return (VM_ACTIONS as readonly string[]).includes(name);
}

/** A VM as the dashboard names it. */
export interface VmRef {
  readonly host: string;
  readonly name: string;
}

/**
 * An action that was not done: `status` is the HTTP status the dashboard answers with (403
 * refused, 404 no such VM, 409 not connected now, 502 QEMU answered with an error).
 */
export class ActionError extends QmpError {
  override name = "ActionError";
  constructor(
    message: string,
    readonly status: 403 | 404 | 409 | 502,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Runs actions on VMs. */
export interface VmActions {
  /**
   * Runs `action` on `vm`; resolves with QEMU's answer.
   *
   * @throws ActionError when it was refused or failed.
   */
  execute(
    vm: VmRef,
    action: VmAction,
    options?: { readonly timeoutMs?: number | undefined },
  ): Promise<unknown>;
}

/** Something that feeds the dashboard's journal until stopped. */
export interface VmSource {
  /** What it watches (for the start-up line): `3 targets`, `nats://hub:4222 stream QMP`. */
  readonly description: string;
  /** Feeds the journal until `signal` aborts; resolves with an exit status when it ends. */
  run(signal: AbortSignal): Promise<number>;
  /** How actions reach its VMs (none: the dashboard refuses them). */
  readonly actions?: VmActions | undefined;
}

/** Actions on the VMs this process watches, through each watch's client. */
export class LocalActions implements VmActions {
  readonly host: string;
  readonly #clients = new Map<string, QmpClient>();

  constructor(host: string) {
    this.host = host;
  }

  /** The watch's client of VM `name` is connected (the watch's one monitor connection). */
  attach(name: string, client: QmpClient): void {
    this.#clients.set(name, client);
  }

  /** That client is closing: actions on `name` are refused until the watch attaches another. */
  detach(name: string, client: QmpClient): void {
    if (this.#clients.get(name) === client) this.#clients.delete(name);
  }

  async execute(
    vm: VmRef,
    action: VmAction,
    options: { readonly timeoutMs?: number | undefined } = {},
  ): Promise<unknown> {
    const client = vm.host === this.host ? this.#clients.get(vm.name) : undefined;
    if (client === undefined)
      throw new ActionError(`${action} on ${vm.host}/${vm.name}: no such VM is watched here`, 404);
    if (client.state !== "connected")
      throw new ActionError(
        `${action} on ${vm.host}/${vm.name}: not connected now (the watch is reconnecting)`,
        409,
      );
    try {
      return await client.execute(action, {}, { timeoutMs: options.timeoutMs ?? 10_000 });
    } catch (error) {
      throw new ActionError(
        `${action} on ${vm.host}/${vm.name} failed: ${(error as Error).message}`,
        502,
        { cause: error },
      );
    }
  }
}
