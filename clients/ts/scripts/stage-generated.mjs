// Copies the generated TypeScript (the repository's gen/ts, written by tools/generate.py) into
// src/gen, where tsc compiles it with the hand-written sources. src/gen is never committed:
// gen/ts is the one generated copy, and the packed package carries the compiled result.
import { cpSync, existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const generated = join(here, "..", "..", "..", "gen", "ts");
const staged = join(here, "..", "src", "gen");

if (!existsSync(generated)) {
  console.error(`${generated} is missing: build @relais/client from the Relais repository (make gen writes it)`);
  process.exit(1);
}
rmSync(staged, { recursive: true, force: true });
cpSync(generated, staged, { recursive: true });
