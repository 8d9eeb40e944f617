#!/usr/bin/env node
// Forge cannot download solc on an offline machine, so foundry.toml points here: a stand-in for
// the solc binary that answers the two calls forge makes (`--version`, `--standard-json`) with
// the npm `solc` package (soljson compiled to WebAssembly).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");
const args = process.argv.slice(2);

if (args.includes("--version")) {
  // forge parses the `Version: x.y.z+commit…` line.
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes("--standard-json")) {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = Buffer.concat(chunks).toString("utf8");
  // forge inlines every source's content; anything it did not is a missing file, reported by solc itself.
  const missing = () => ({ error: "File not found" });
  process.stdout.write(solc.compile(input, { import: missing }));
} else {
  process.stderr.write(`solc shim: unsupported arguments ${args.join(" ")}\n`);
  process.exit(1);
}
