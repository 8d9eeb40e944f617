import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ARTIFACTS_MODULE, renderArtifacts } from "../../contracts/tools/artifacts.ts";

describe("generated contract artifacts", () => {
  it("match the contracts as built (run `npm run gen:contracts` after changing contracts/src)", () => {
    expect(readFileSync(ARTIFACTS_MODULE, "utf8")).toBe(renderArtifacts());
  });
});
