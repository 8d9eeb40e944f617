#!/usr/bin/env node
// The registry reachable here answers 404 for the other platforms' builds of packages that ship native
// binaries as optional dependencies (@foundry-rs/anvil-darwin-arm64, @biomejs/cli-win32-x64, …). npm 11
// then leaves them out of package-lock.json, and `npm ci` refuses the lock as out of sync with
// package.json. This adds each missing entry with its version, platform and `optional`, which is what
// npm itself writes where the registry has them: `npm ci` then skips them by platform, fetching nothing.
// Idempotent; run by `npm run lock:complete` after changing dependencies, and by .ci/run.
import { readFileSync, writeFileSync } from "node:fs";

const OS = /(darwin|linux|win32|android|freebsd|openbsd|netbsd|sunos|aix)/;
const CPU = /(arm64|x64|amd64|ia32|arm|ppc64|s390x|riscv64|loong64)/;

const path = process.argv[2] ?? "package-lock.json";
const lock = JSON.parse(readFileSync(path, "utf8"));
const packages = lock.packages;
const missing = [];
for (const entry of Object.values(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    if (packages[`node_modules/${name}`]) continue;
    const os = OS.exec(name)?.[1];
    const cpu = CPU.exec(name.replace(os ?? "", ""))?.[1];
    if (!os || !cpu) {
      console.error(`complete-lockfile: cannot tell the platform of ${name}; add it by hand`);
      process.exitCode = 1;
      continue;
    }
    missing.push(name);
    packages[`node_modules/${name}`] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu === "amd64" ? "x64" : cpu],
      ...(name.includes("musl") ? { libc: ["musl"] } : {}),
    };
  }
}
if (missing.length > 0) {
  const [root, ...rest] = Object.keys(packages);
  const ordered = { [root]: packages[root] };
  for (const key of rest.sort()) ordered[key] = packages[key];
  lock.packages = ordered;
  writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
}
console.log(`complete-lockfile: ${missing.length} platform entries added`);
