import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import semver from "semver";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Packages that declare a newer Node than ours, each with why x402-devnet still runs on every Node its
 * `engines` admits. `.ci/node22` runs the whole suite on Node 22 as well, so both ends are exercised.
 */
const DECLARED_NEWER: Record<string, string> = {
  // Its one Node 22 API, Promise.withResolvers, is filled in by src/chain/polyfills.ts before prool runs.
  prool: "src/chain/polyfills.ts",
  // Reached only through fastify's inject() (light-my-request), which no part of a run calls.
  cookie: "light-my-request",
};

type Manifest = { name: string; version: string; engines?: { node?: string } };

async function installed(dir = join(ROOT, "node_modules")): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.name.startsWith("@")) {
      manifests.push(...(await installed(path)));
      continue;
    }
    try {
      manifests.push(JSON.parse(await readFile(join(path, "package.json"), "utf8")) as Manifest);
    } catch {
      // Not a package (a stray folder): nothing declares anything.
    }
    manifests.push(...(await installed(join(path, "node_modules")).catch(() => [])));
  }
  return manifests;
}

describe("engines", () => {
  it("admits only Node versions every installed package accepts, bar the exceptions explained above", async () => {
    const ours = (JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as Manifest).engines?.node;
    expect(ours).toBeDefined();
    // The oldest release of each part of our range: if it satisfies a package, the later ones do too.
    const oldest = (ours ?? "").split("||").map((part) => semver.minVersion(part.trim()) as semver.SemVer);
    expect(oldest.map((v) => v.version)).toEqual(["20.19.0", "22.12.0"]);
    const refusing = (await installed())
      .filter((m) => m.engines?.node && !(m.name in DECLARED_NEWER))
      .filter((m) => oldest.some((v) => !semver.satisfies(v, m.engines?.node ?? "*")))
      .map((m) => `${m.name}@${m.version} wants node ${m.engines?.node}`);
    expect([...new Set(refusing)]).toEqual([]);
  });

  it("runs on this Node, which the range admits", async () => {
    const ours = (JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as Manifest).engines?.node;
    expect(semver.satisfies(process.version, ours ?? "")).toBe(true);
  });
});
