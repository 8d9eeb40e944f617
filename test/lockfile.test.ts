import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

type Lock = { packages: Record<string, { optionalDependencies?: Record<string, string> }> };

describe("package-lock.json", () => {
  it("lists every platform build of native packages, so `npm ci` accepts it (run `npm run lock:complete`)", () => {
    const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8")) as Lock;
    const missing = Object.values(lock.packages).flatMap((entry) =>
      Object.keys(entry.optionalDependencies ?? {}).filter((name) => !lock.packages[`node_modules/${name}`]),
    );
    expect(missing).toEqual([]);
  });
});
