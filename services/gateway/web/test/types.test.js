// The library's types: its JSDoc type-checks strictly, the declarations
// shipped in types/ are the ones the sources give, and a TypeScript user's
// code (test/types/usage.ts) type-checks against them, misuse included.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tsc = path.join(web, "node_modules/typescript/bin/tsc");

function run(...args) {
  try {
    execFileSync(process.execPath, [tsc, ...args], { cwd: web, stdio: "pipe" });
  } catch (err) {
    assert.fail(`tsc ${args.join(" ")}:\n${err.stdout}${err.stderr}`);
  }
}

/** Every file under `dir`, by its path relative to `dir`, with its text. */
function tree(dir, prefix = "") {
  const files = {};
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const name = path.join(prefix, entry.name);
    if (entry.isDirectory()) Object.assign(files, tree(path.join(dir, entry.name), name));
    else files[name] = fs.readFileSync(path.join(dir, entry.name), "utf8");
  }
  return files;
}

test("the shipped declarations are the sources' (npm run types regenerates them)", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "chat-types-"));
  run("-p", "tsconfig.json", "--outDir", out);
  assert.deepEqual(tree(path.join(web, "types")), tree(out));
});

test("a TypeScript user's code type-checks, and misuse does not", () => {
  run("-p", "tsconfig.usage.json");
});
