import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSC = join(ROOT, "node_modules", ".bin", "tsc");

/** A user's project with x402-devnet installed (linked, as `npm install ../x402-devnet` does). */
let consumer: string;

beforeAll(async () => {
  // What `npm install` (prepare) and `npm pack` build: the package root is compiled JavaScript.
  await run(TSC, ["-p", "tsconfig.build.json"], { cwd: ROOT });
  consumer = await mkdtemp(join(tmpdir(), "x402-consumer-"));
  await mkdir(join(consumer, "node_modules"));
  await symlink(ROOT, join(consumer, "node_modules", "x402-devnet"), "dir");
  await writeFile(join(consumer, "package.json"), JSON.stringify({ name: "consumer", type: "module" }));
}, 120_000);
afterAll(async () => {
  if (consumer) await rm(consumer, { recursive: true, force: true });
});

describe("the package root", () => {
  it("runs in plain Node (no tsx): an agent from `x402-devnet` pays a stack from `x402-devnet`", async () => {
    await writeFile(
      join(consumer, "app.mjs"),
      `import { createAgent, startStack } from "x402-devnet";
const stack = await startStack({ devnet: { accounts: 1 } });
try {
  const agent = createAgent({ privateKey: stack.devnet.accounts[0].privateKey });
  const response = await agent.fetch(stack.server.url + "/weather");
  console.log(JSON.stringify({ status: response.status, spent: String(agent.spent) }));
} finally {
  await stack.stop();
}
`,
    );
    const { stdout } = await run(process.execPath, ["app.mjs"], { cwd: consumer });
    expect(JSON.parse(stdout)).toEqual({ status: 200, spent: "1000" });
  });

  it("type-checks in a strict TypeScript project, declarations included", async () => {
    await writeFile(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ["app.ts"],
      }),
    );
    await writeFile(
      join(consumer, "app.ts"),
      `import { createAgent, defineScenario, PolicyError, type RunReport, runScenario } from "x402-devnet";
const agent = createAgent({ privateKey: "0x01", policy: { maxPerPayment: 1_000n, allowedHosts: ["127.0.0.1:4021"] } });
const spent: bigint = agent.spent;
const scenario = defineScenario({ name: "mine", description: "mine", agents: { count: 2 } });
const report: Promise<RunReport> = runScenario(scenario, { serverUrl: "http://127.0.0.1:4021/weather" });
export { spent, report, PolicyError };
// @ts-expect-error: a policy limit is a bigint of USDC base units, not a number
createAgent({ privateKey: "0x01", policy: { maxPerPayment: 1000 } });
`,
    );
    await expect(run(TSC, ["-p", "tsconfig.json"], { cwd: consumer })).resolves.toMatchObject({ stdout: "" });
  });
});
