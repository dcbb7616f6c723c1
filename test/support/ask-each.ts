/**
 * Test support: ask a QMP server a list of requests, one at a time, and keep each reply line as
 * the server printed it; on a simulated machine or on a real QEMU started for the purpose.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimulatedMachine, type SimulatedMachineOptions } from "../../src/sim/index.js";
import { type QemuInstallation, RawQmp, type StartQemuOptions, startQemu } from "./real-qemu.js";

/** A request: a command and its arguments (none when undefined). */
export interface QmpRequest {
  readonly execute: string;
  readonly arguments?: Readonly<Record<string, unknown>> | undefined;
}

/** Options of {@link askEach}. */
export interface AskEachOptions {
  /** Milliseconds to wait for each reply. Default 30 000 (query-qmp-schema on a busy machine). */
  readonly replyTimeoutMs?: number | undefined;
  /** Who answers, for error messages. */
  readonly server?: string | undefined;
}

/**
 * Sends `requests` one by one over a negotiated connection and returns each reply line as the
 * server printed it (without its `\r\n`). Fails on anything but one reply per request (an
 * event, a closed socket, a timeout).
 */
export async function askEach(
  qmp: RawQmp,
  requests: readonly QmpRequest[],
  options: AskEachOptions = {},
): Promise<string[]> {
  const server = options.server ?? "the server";
  const replies: string[] = [];
  for (const request of requests) {
    const { execute, arguments: args } = request;
    const line = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args });
    qmp.send(line);
    const reply = await qmp.nextLine(options.replyTimeoutMs ?? 30_000);
    if (reply === undefined || !reply.endsWith("\r\n")) {
      throw new Error(
        `${server}: no reply to ${line}${qmp.isEnded ? " (the monitor closed)" : ""}`,
      );
    }
    if (!/^\{"(return|error)": /.test(reply)) {
      throw new Error(`${server}: expected the reply to ${line}, got ${reply.slice(0, 200)}`);
    }
    replies.push(reply.slice(0, -2));
  }
  return replies;
}

/** The reply lines a new simulated machine (listening on a unix socket) gives to `requests`. */
export async function simReplies(
  options: SimulatedMachineOptions,
  requests: readonly QmpRequest[],
): Promise<string[]> {
  const vm = new SimulatedMachine({ startPaused: true, ...options });
  const dir = mkdtempSync(join(tmpdir(), "qmpkit-ask-"));
  let qmp: RawQmp | undefined;
  try {
    const path = join(dir, "qmp.sock");
    await vm.listen(`unix:${path}`);
    qmp = await RawQmp.connect(path);
    await qmp.handshake();
    return await askEach(qmp, requests, { server: `the simulator of ${vm.profile.id}` });
  } finally {
    qmp?.close();
    await vm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The reply lines a real QEMU, started with `start`, gives to `requests`; its stderr is added
 * to a failure's message.
 */
export async function realReplies(
  qemu: QemuInstallation,
  requests: readonly QmpRequest[],
  start: StartQemuOptions = {},
  options: AskEachOptions = {},
): Promise<string[]> {
  const proc = await startQemu({ ...start, qemu });
  let qmp: RawQmp | undefined;
  try {
    qmp = await RawQmp.connect(proc.socketPath);
    await qmp.handshake();
    return await askEach(qmp, requests, { server: qemu.binary, ...options });
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : error}\n${proc.stderr()}`, {
      cause: error,
    });
  } finally {
    qmp?.close();
    await proc.stop();
  }
}
