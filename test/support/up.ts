import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { Address, Hex } from "viem";

const BIN = new URL("../../src/bin.js", import.meta.url).pathname;

/** What `x402-devnet up` prints when ready, as much of it as a client needs. */
export type Ready = {
  rpcUrl: string;
  chainId: number;
  usdc: Address;
  usdcDomain: { name: string; version: string };
  accounts: { address: Address; privateKey: Hex }[];
  facilitatorUrl: string;
  serverUrl: string;
  routes: {
    method: string;
    path: string;
    price: string;
    payTo: Address;
    scheme: string;
    assetTransferMethod: string;
  }[];
};

/** `x402-devnet up` on free ports, as a user starts it; resolves with its ready line. */
export async function startUp(
  args: readonly string[] = [],
): Promise<{ ready: Ready; stop(): Promise<void> }> {
  const up: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [BIN, "up", "--port", "0", "--facilitator-port", "0", "--server-port", "0", "--accounts", "3", ...args],
    { stdio: "pipe" },
  );
  let stderr = "";
  up.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(up, "exit");
  const line = once(createInterface({ input: up.stdout }), "line") as Promise<[string]>;
  const failed = exited.then(() => {
    throw new Error(`x402-devnet up exited before it was ready:\n${stderr}`);
  });
  const [first] = await Promise.race([line, failed]);
  return {
    ready: JSON.parse(first) as Ready,
    async stop() {
      if (up.exitCode !== null) return;
      up.kill("SIGINT");
      await exited;
    },
  };
}
