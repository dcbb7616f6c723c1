/**
 * The QEMU releases whose every command and event qmpkit types (`qmpkit/qemu/7.2`,
 * `qmpkit/qemu/10.0`): their recorded schemas (`schema/releases/`, written by
 * `record-release-schema.ts`) and the types `npm run gen` makes of them
 * (`src/generated/releases/`).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { JsonValue } from "../src/base/json.js";
import { generateTypeScript } from "../src/schema/codegen/generate.js";
import type { GeneratedFile } from "../src/schema/codegen/printer.js";
import { modelFromIntrospection, type SchemaInfo } from "../src/schema/introspect.js";
import type { SchemaModel } from "../src/schema/model.js";

/** What `schema/releases/qemu-X.Y.Z.json` holds. */
export interface ReleaseSchemaFile {
  /** `7.2.22`. */
  readonly release: string;
  /** The build the answer was recorded from. */
  readonly build: string;
  /** The binary's `query-qmp-schema` answer, as it sent it (type names masked as numbers). */
  readonly schema: JsonValue;
  /** Masked number → QEMU's type name. */
  readonly names: Readonly<Record<string, string>>;
  /** Command, event or type name → the release that added it. */
  readonly since: Readonly<Record<string, string>>;
}

/**
 * The build configuration of each recorded release, as far as the schema's `if` conditions go:
 * Debian's x86_64 system emulator. Found by comparing the source tree's introspection with the
 * binary's answer (the recording script refuses any difference).
 */
export const releaseBuilds: Readonly<
  Record<string, { readonly description: string; readonly defined: (symbol: string) => boolean }>
> = {
  "7.2.22": {
    description: "Debian 12 qemu-system-x86 1:7.2+dfsg-7+deb12u18, x86_64",
    defined: (symbol) =>
      symbol.startsWith("TARGET_")
        ? symbol === "TARGET_I386"
        : !["CONFIG_BLKIO", "CONFIG_VMNET", "CONFIG_COCOA"].includes(symbol),
  },
  "10.0.2": {
    description: "Debian bookworm-backports qemu-system-x86 1:10.0.2+ds-2+deb13u1~bpo12+1, x86_64",
    defined: (symbol) =>
      symbol.startsWith("TARGET_")
        ? symbol === "TARGET_I386"
        : ![
            "CONFIG_BLKIO",
            "CONFIG_VMNET",
            "CONFIG_COCOA",
            "CONFIG_WIN32",
            "CONFIG_AUDIO_DSOUND",
            "CONFIG_AUDIO_COREAUDIO",
            "CONFIG_AUDIO_SNDIO",
            "CONFIG_QPL",
            "CONFIG_UADK",
            "CONFIG_QATZIP",
            "CONFIG_AF_XDP",
          ].includes(symbol),
  },
};

const root = fileURLToPath(new URL("..", import.meta.url));

/** `schema/releases/qemu-7.2.22.json`, relative to the repository root. */
export function releaseSchemaPath(release: string): string {
  return `schema/releases/qemu-${release}.json`;
}

/** `7.2` of `7.2.22`: releases are typed per minor version. */
function minor(release: string): string {
  return release.split(".").slice(0, 2).join(".");
}

export function readReleaseSchema(release: string): ReleaseSchemaFile {
  return JSON.parse(
    readFileSync(`${root}${releaseSchemaPath(release)}`, "utf8"),
  ) as ReleaseSchemaFile;
}

/** The recorded answer with QEMU's type names in place of the numbers. */
export function unmaskedSchema(file: ReleaseSchemaFile): SchemaInfo[] {
  const name = (n: string) => file.names[n] ?? n;
  const rename = (info: SchemaInfo): SchemaInfo => {
    const json = JSON.stringify(info, (key, value: unknown) =>
      typeof value === "string" &&
      ["name", "type", "arg-type", "ret-type", "element-type"].includes(key)
        ? value.replace(/^\[(\d+)\]$/, (_m, n: string) => `[${name(n)}]`).replace(/^\d+$/, name)
        : value,
    );
    return JSON.parse(json) as SchemaInfo;
  };
  return (file.schema as unknown as SchemaInfo[]).map(rename);
}

/** The model of a recorded release, with its `Since:` facts. */
export function releaseModel(file: ReleaseSchemaFile): SchemaModel {
  const model = modelFromIntrospection(unmaskedSchema(file));
  return {
    ...model,
    definitions: model.definitions.map((d) =>
      file.since[d.name] === undefined ? d : { ...d, since: file.since[d.name] },
    ),
  };
}

/** Where release types go. */
export const releasesDir = "releases";

/** The releases recorded in the repository. */
export const recordedReleases = ["7.2.22", "10.0.2"] as const;

/** `src/generated/releases/qemu-7.2.ts` for each recorded release (types only). */
export function generateReleaseTypes(): GeneratedFile[] {
  return recordedReleases.map((release) => {
    const file = readReleaseSchema(release);
    const source = releaseSchemaPath(release);
    const types = generateTypeScript(releaseModel(file), {
      source,
      relativePrefix: "../../",
      regenerate: `re-record with scripts/record-release-schema.ts --release ${release}, then \`npm run gen\``,
      description: `Every command and event of QEMU ${release} (${file.build}), with QEMU's type names, as the binary reports them in query-qmp-schema.`,
    }).find((f) => f.name === "types.ts")!;
    return types.renamed(`${releasesDir}/qemu-${minor(release)}.ts`);
  });
}
