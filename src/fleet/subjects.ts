/**
 * The fleet's NATS subject scheme (docs/fleet.md "Subjects"):
 *
 * | subject | what |
 * |---|---|
 * | `qmp.HOST.VM.event.NAME` | a QMP event `NAME` of VM `VM` on host `HOST` |
 * | `qmp.HOST.VM.state` | a run-state change (from an event, or a correction from `query-status`) |
 * | `qmp.HOST.VM.watch` | a notice about the watch itself: connected, lost, reconnected with the gap, … |
 * | `qmp-exec.HOST.VM` | a command for the VM, through its agent (request/reply; never stored) |
 *
 * The stream (`QMP` by default) takes `qmp.>`; commands have a prefix of their own so that the
 * stream never keeps one and a reader may filter the stream by any part (`qmp.web1.>`,
 * `qmp.*.vm1.>`: a filter must be within the stream's subjects). The KV bucket's key for a VM is
 * `HOST.VM`.
 *
 * A host or VM name becomes one subject token: `.`, `*`, `>` and white space are not allowed in
 * a token, nor most characters in a KV key, so every byte outside `A-Z a-z 0-9 _ - /` is written
 * `=XX` (its UTF-8 byte in upper-case hex): `web1.example.org` → `web1=2Eexample=2Eorg`. The
 * encoding is reversible (`decodeToken`) and the same in subjects and KV keys.
 *
 * Pure: no I/O.
 *
 * @module
 */
import { QmpError } from "../base/errors.js";

/** The default prefix of every fleet subject. */
export const DEFAULT_SUBJECT_PREFIX = "qmp";

const plain = /^[A-Za-z0-9_/-]$/;

/** One host or VM name as a subject token (and KV key part); see the module comment. */
export function encodeToken(name: string): string {
  if (name === "") throw new QmpError("a host or VM name must not be empty");
  let out = "";
  for (const ch of name) {
    if (plain.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, "utf8"))
      out += `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The name a token encodes (`encodeToken`'s inverse). */
export function decodeToken(token: string): string {
  if (!token.includes("=")) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; ) {
    if (token[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(token.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(...Buffer.from(token[i]!, "utf8"));
      i++;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The kinds of stored fleet messages, by the last tokens of their subjects. */
export type FleetMessageKind = "event" | "state" | "watch";

/** The subjects of one VM. */
export interface VmSubjects {
  /** `qmp.HOST.VM` */
  readonly base: string;
  event(name: string): string;
  readonly state: string;
  readonly watch: string;
  readonly exec: string;
  /** The KV key `HOST.VM`. */
  readonly key: string;
}

/** The subjects of VM `vm` on `host`. */
export function vmSubjects(
  host: string,
  vm: string,
  prefix: string = DEFAULT_SUBJECT_PREFIX,
): VmSubjects {
  const key = `${encodeToken(host)}.${encodeToken(vm)}`;
  const base = `${prefix}.${key}`;
  return {
    base,
    event: (name) => `${base}.event.${encodeToken(name)}`,
    state: `${base}.state`,
    watch: `${base}.watch`,
    exec: `${prefix}-exec.${key}`,
    key,
  };
}

/** The subjects the stream takes: events, states and watch notices of every VM. */
export function streamSubjects(prefix: string = DEFAULT_SUBJECT_PREFIX): string[] {
  return [`${prefix}.>`];
}

/** The subject an agent of `host` answers commands on (every VM of it). */
export function execSubjects(host: string, prefix: string = DEFAULT_SUBJECT_PREFIX): string {
  return `${prefix}-exec.${encodeToken(host)}.*`;
}

/** What a fleet subject names, or undefined when it is not one. */
export function parseSubject(
  subject: string,
  prefix: string = DEFAULT_SUBJECT_PREFIX,
): { host: string; vm: string; kind: FleetMessageKind; event?: string | undefined } | undefined {
  const parts = subject.split(".");
  if (parts[0] !== prefix || parts.length < 4) return undefined;
  const [, host, vm, kind, name] = parts as [string, string, string, string, string?];
  if (kind === "event" && parts.length === 5)
    return { host: decodeToken(host), vm: decodeToken(vm), kind, event: decodeToken(name!) };
  if ((kind === "state" || kind === "watch") && parts.length === 4)
    return { host: decodeToken(host), vm: decodeToken(vm), kind };
  return undefined;
}

/**
 * The subject filter of a `HOST/VM` pattern (either part may be `*`; a missing VM part means
 * every VM of the host): `web1/*` → `qmp.web1.*.>`. Globs inside a name (`vm-*`) cannot be a
 * subject filter; callers match those on the decoded names.
 */
export function fleetFilterSubject(
  pattern: string | undefined,
  prefix: string = DEFAULT_SUBJECT_PREFIX,
): string {
  if (pattern === undefined || pattern === "" || pattern === "*") return `${prefix}.>`;
  const slash = pattern.indexOf("/");
  const host = slash < 0 ? pattern : pattern.slice(0, slash);
  const vm = slash < 0 ? "*" : pattern.slice(slash + 1);
  const token = (t: string) => (t === "*" || /[*?[]/.test(t) ? "*" : encodeToken(t));
  return `${prefix}.${token(host)}.${token(vm)}.>`;
}
