import { spawn } from "node:child_process";
import { once } from "node:events";
import { defineScenario } from "../../src/scenario/index.ts";

const BIN = new URL("../../src/bin.js", import.meta.url).pathname;

/** `x402-devnet scenario …` in a child process, to its exit: what a CI job would see. */
export async function scenarioCli(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, "scenario", ...args], { stdio: "pipe" });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** A few agents paying GET /weather for a moment, with a threshold that holds on a healthy stack. */
export const smallScenario = (agents: number, durationMs: number) =>
  defineScenario({
    name: "small",
    description: "a few agents for a moment",
    agents: { count: agents },
    target: "/weather",
    load: { kind: "closed", durationMs },
    thresholds: ["errors.rate < 0.01"],
  });
