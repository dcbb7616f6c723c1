/**
 * Target arguments of the command line: `unix:PATH`, `tcp:HOST:PORT`, a plain socket path, or a
 * glob of socket paths (`/run/vms/*.qmp`), each turned into an endpoint with a short label that
 * names its VM on every output line.
 *
 * Globs are expanded here (Node 20 has no `fs.glob`): `*`, `?` and `[...]` classes within one
 * path segment, as a shell does; a pattern that matches nothing is an error unless the caller
 * watches for sockets to appear (`events --follow`).
 *
 * @module
 */
import { QmpError } from "../base/errors.js";
import { readdirSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { UsageError } from "./usage-error.js";

/** One QMP endpoint named on the command line. */
export type Endpoint =
  | { readonly kind: "unix"; readonly path: string; readonly spec: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly spec: string };

/**
 * A glob that matches no socket: a failure of the moment (exit status 1), not of the command
 * line, since the sockets may come later.
 */
export class NoTargetError extends QmpError {
  override name = "NoTargetError";
}

/** A target argument after parsing: one endpoint, or a glob to expand. */
export type TargetSpec =
  | { readonly kind: "endpoint"; readonly endpoint: Endpoint }
  | { readonly kind: "glob"; readonly pattern: string };

const globMagic = /[*?[]/;

/**
 * Parses one target argument. Throws `UsageError` with the offending text when it cannot be a
 * target (a `tcp:` without a port, an empty path, a port out of range).
 */
export function parseTargetArg(text: string): TargetSpec {
  if (text === "")
    throw new UsageError("invalid target '': expected unix:PATH, tcp:HOST:PORT or a socket path");
  if (text.startsWith("tcp:")) return { kind: "endpoint", endpoint: parseTcp(text) };
  const path = text.startsWith("unix:") ? text.slice("unix:".length) : text;
  if (path === "") throw new UsageError(`invalid target '${text}': the socket path is empty`);
  if (globMagic.test(path)) return { kind: "glob", pattern: path };
  return { kind: "endpoint", endpoint: { kind: "unix", path, spec: `unix:${path}` } };
}

function parseTcp(text: string): Endpoint {
  const rest = text.slice("tcp:".length);
  // `tcp:[::1]:4444` for IPv6, as QEMU spells it (util/qemu-sockets.c inet_parse).
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(rest);
  if (!match) throw new UsageError(`invalid target '${text}': expected tcp:HOST:PORT`);
  const host = match[1] ?? match[2] ?? "";
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`invalid target '${text}': port ${match[3]} is not in 1..65535`);
  }
  const effectiveHost = host === "" ? "localhost" : host;
  const shown = effectiveHost.includes(":") ? `[${effectiveHost}]` : effectiveHost;
  return { kind: "tcp", host: effectiveHost, port, spec: `tcp:${shown}:${port}` };
}

/** Converts one glob segment (no `/`) to an anchored regular expression. */
export function globSegmentToRegExp(segment: string): RegExp {
  let out = "";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const close = segment.indexOf("]", i + 2);
      if (close < 0) {
        out += "\\[";
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      out += `[${negate ? "^" : ""}${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = close;
    } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  // A leading dot is matched only explicitly, as in a shell.
  const hidden = segment.startsWith(".") ? "" : "(?!\\.)";
  return new RegExp(`^${hidden}${out}$`);
}

/**
 * Expands a glob to the existing paths it matches, sorted. Only `*`, `?` and `[...]` are special,
 * each within one path segment. Relative patterns resolve against `cwd` and stay relative.
 */
export function expandGlob(pattern: string, cwd: string = process.cwd()): string[] {
  const absolute = isAbsolute(pattern);
  const segments = pattern.split(sep).filter((s, i) => s !== "" || i === 0);
  let paths: string[] = [absolute ? sep : ""];
  for (const segment of absolute ? segments.slice(1) : segments) {
    if (segment === "") continue;
    const next: string[] = [];
    for (const base of paths) {
      if (!globMagic.test(segment)) {
        next.push(base === "" ? segment : join(base, segment));
        continue;
      }
      const dir = resolve(cwd, base === "" ? "." : base);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      const re = globSegmentToRegExp(segment);
      for (const name of names.sort()) {
        if (re.test(name)) next.push(base === "" ? name : join(base, name));
      }
    }
    paths = next;
  }
  return paths.filter((p) => {
    try {
      statSync(resolve(cwd, p));
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether a path is a unix socket (glob matches keep only sockets: a directory of VM files). */
function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Resolves target arguments to endpoints, expanding globs to the sockets they match now, in
 * argument order and without duplicates. With `allowEmptyGlobs` a glob matching nothing is
 * skipped (the caller rescans later); otherwise it is a `UsageError`.
 */
export function resolveTargets(
  specs: readonly TargetSpec[],
  options: { allowEmptyGlobs?: boolean | undefined; cwd?: string | undefined } = {},
): Endpoint[] {
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  const add = (endpoint: Endpoint) => {
    if (seen.has(endpoint.spec)) return;
    seen.add(endpoint.spec);
    out.push(endpoint);
  };
  for (const spec of specs) {
    if (spec.kind === "endpoint") {
      add(spec.endpoint);
      continue;
    }
    const matches = expandGlob(spec.pattern, options.cwd).filter((p) =>
      isSocket(resolve(options.cwd ?? process.cwd(), p)),
    );
    if (matches.length === 0 && !options.allowEmptyGlobs) {
      throw new NoTargetError(
        `no socket matches '${spec.pattern}' (with --follow, qmpkit waits for one to appear)`,
      );
    }
    for (const path of matches) add({ kind: "unix", path, spec: `unix:${path}` });
  }
  return out;
}

/** The `unix:PATH` / `tcp:HOST:PORT` text the transports take. */
export function endpointAddress(endpoint: Endpoint): string {
  return endpoint.spec;
}

/**
 * Short labels for a set of endpoints: a socket's file name without its extension
 * (`/run/vms/web1.qmp` → `web1`), `host:port` for TCP; when two would be equal, parent
 * directories are added until they differ.
 */
export function labelEndpoints(endpoints: readonly Endpoint[]): Map<Endpoint, string> {
  const labels = new Map<Endpoint, string>();
  type UnixEndpoint = Extract<Endpoint, { kind: "unix" }>;
  const unix = endpoints.filter((e): e is UnixEndpoint => e.kind === "unix");
  for (const e of endpoints) if (e.kind === "tcp") labels.set(e, e.spec.slice("tcp:".length));
  let depth = 0;
  let pending = unix;
  while (pending.length > 0) {
    const candidate = new Map<UnixEndpoint, string>();
    for (const e of pending) candidate.set(e, unixLabel(e.path, depth));
    const counts = new Map<string, number>();
    for (const l of candidate.values()) counts.set(l, (counts.get(l) ?? 0) + 1);
    const next: UnixEndpoint[] = [];
    for (const [e, l] of candidate) {
      if ((counts.get(l) ?? 0) > 1 && depth < 16) next.push(e);
      else labels.set(e, l);
    }
    pending = next;
    depth++;
  }
  return labels;
}

function unixLabel(path: string, depth: number): string {
  const file = basename(path);
  const dot = file.lastIndexOf(".");
  if (depth === 0) return dot > 0 ? file.slice(0, dot) : file;
  // Same stem: the extension may differ (vm.qmp, vm.sock); then the directories.
  let label = file;
  let dir = dirname(path);
  for (let i = 1; i < depth; i++) {
    label = `${basename(dir)}/${label}`;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return label;
}
