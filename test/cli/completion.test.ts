/**
 * `qmpkit completion bash|zsh`: the scripts are loaded into the real shells and asked, as a
 * person's Tab would ask them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { runCli } from "./support.js";

function shellAvailable(name: string): { skip?: string } {
  if (spawnSync(name, ["-c", "true"], { stdio: "ignore" }).status === 0 || process.env.CI)
    return {};
  const why = `${name} not found: its completion test SKIPPED (apt-get install ${name})`;
  process.stderr.write(`\n*** ${why} ***\n\n`);
  return { skip: why };
}

suite("shell completion scripts", () => {
  test(
    "bash completes commands, subcommands, options, choices and targets",
    shellAvailable("bash"),
    async () => {
      const r = await runCli(["completion", "bash"]);
      assert.equal(r.status, 0, r.stderr);
      const dir = mkdtempSync(join(tmpdir(), "qmpkit-completion-"));
      try {
        const script = join(dir, "qmpkit.bash");
        writeFileSync(script, r.stdout);
        writeFileSync(join(dir, "vm1.qmp"), "");
        /** COMPREPLY for the words typed so far (the last one is under the cursor). */
        const complete = (...words: string[]) => {
          const program = `source ${JSON.stringify(script)}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(" ")}); COMP_CWORD=${words.length - 1}; _qmpkit; printf '%s\\n' "\${COMPREPLY[@]}"`;
          const out = spawnSync("bash", ["-c", program], { cwd: dir, encoding: "utf8" });
          assert.equal(out.status, 0, out.stderr);
          return out.stdout
            .split("\n")
            .filter((l) => l !== "")
            .sort();
        };
        assert.deepEqual(complete("qmpkit", "ev"), ["events"]);
        assert.deepEqual(complete("qmpkit", "sh"), ["shell"]);
        assert.deepEqual(complete("qmpkit", "events", "--fo"), ["--follow"]);
        assert.deepEqual(complete("qmpkit", "shell", "--h"), ["--help", "--hmp"]);
        assert.deepEqual(complete("qmpkit", "schema", ""), [
          "--help",
          "check",
          "gen",
          "introspect",
        ]);
        assert.deepEqual(complete("qmpkit", "schema", "gen", "--o"), ["--out"]);
        assert.deepEqual(complete("qmpkit", "completion", ""), ["--help", "bash", "zsh"]);
        // Targets are socket paths.
        assert.deepEqual(complete("qmpkit", "exec", "vm"), ["vm1.qmp"]);
        assert.deepEqual(complete("qmpkit", "sim", "vm"), ["vm1.qmp"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("zsh loads the script and registers it for qmpkit", shellAvailable("zsh"), async () => {
    const r = await runCli(["completion", "zsh"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^#compdef qmpkit\n/);
    for (const name of ["events", "exec", "shell", "proxy", "schema gen", "completion"])
      assert.ok(r.stdout.includes(`cmdpath='${name}'`), `zsh script knows ${name}`);
    const dir = mkdtempSync(join(tmpdir(), "qmpkit-completion-zsh-"));
    try {
      const script = join(dir, "_qmpkit");
      writeFileSync(script, r.stdout);
      const syntax = spawnSync("zsh", ["-n", script], { encoding: "utf8" });
      assert.equal(syntax.status, 0, syntax.stderr);
      const loaded = spawnSync(
        "zsh",
        [
          "-fc",
          `autoload -U compinit; compinit -u -D; source ${JSON.stringify(script)}; print -- \${_comps[qmpkit]}`,
        ],
        { encoding: "utf8", env: { ...process.env, HOME: dir } },
      );
      assert.equal(loaded.stdout.trim(), "_qmpkit", loaded.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses a shell it does not complete", async () => {
    const r = await runCli(["completion", "fish"]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /'fish' is invalid for argument 'shell'. Allowed choices are bash, zsh/);
  });
});
