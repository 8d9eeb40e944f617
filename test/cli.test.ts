import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import getPort from "get-port";
import { afterEach, describe, expect, it } from "vitest";
import { anvilInstance } from "../src/chain/index.ts";

const BIN = new URL("../src/bin.js", import.meta.url).pathname;

const children = new Set<ChildProcessWithoutNullStreams>();

function runCli(args: string[]): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: "pipe" });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

// A failed assertion must not leave a devnet running: whatever a test started and did not stop goes here.
afterEach(async () => {
  await Promise.all(
    [...children].map(async (child) => {
      const exited = once(child, "exit");
      child.kill("SIGINT");
      await exited;
    }),
  );
});

async function exitOf(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; stderr: string }> {
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

describe("x402-devnet up", () => {
  it("prints one ready line, serves the devnet, and stops cleanly on SIGINT", async () => {
    const [port, facilitatorPort, serverPort] = [await getPort(), await getPort(), await getPort()];
    const child = runCli([
      "up",
      "--port",
      String(port),
      "--facilitator-port",
      String(facilitatorPort),
      "--server-port",
      String(serverPort),
      "--accounts",
      "3",
    ]);
    const exit = exitOf(child);
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const ready = JSON.parse(line) as {
      event: string;
      rpcUrl: string;
      chainId: number;
      usdc: string;
      multicall3: string;
      accounts: { address: string; privateKey: string }[];
      facilitatorUrl: string;
      serverUrl: string;
      routes: { method: string; path: string; price: string; payTo: string }[];
    };
    expect(ready).toMatchObject({
      event: "ready",
      rpcUrl: `http://127.0.0.1:${port}`,
      chainId: 8453,
      usdc: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
      multicall3: "0xcA11bde05977b3631167028862bE2a173976CA11",
    });
    expect(ready.accounts).toHaveLength(3);
    expect(ready.accounts[0]?.privateKey).toMatch(/^0x[0-9a-f]{64}$/);

    const response = await fetch(ready.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
    });
    expect(((await response.json()) as { result: string }).result).toBe("0x2105");

    expect(ready.facilitatorUrl).toBe(`http://127.0.0.1:${facilitatorPort}`);
    expect(ready.serverUrl).toBe(`http://127.0.0.1:${serverPort}`);
    expect(ready.routes).toEqual([
      { method: "GET", path: "/weather", price: "1000", payTo: expect.stringMatching(/^0x[0-9a-fA-F]{40}$/) },
    ]);
    const supported = await fetch(`${ready.facilitatorUrl}/supported`);
    expect(supported.status).toBe(200);
    const unpaid = await fetch(`${ready.serverUrl}/weather`);
    expect(unpaid.status).toBe(402);
    expect(unpaid.headers.get("payment-required")).toBeTruthy();

    child.kill("SIGINT");
    const { code, stderr } = await exit;
    expect(code).toBe(0);
    expect(stderr).toMatch(/x402 devnet up/);
    for (const p of [port, facilitatorPort, serverPort]) expect(await portIsFree(p)).toBe(true);
  });

  it.each([
    [["up", "--port", "abc"], /--port must be a positive integer/],
    [["up", "--profile", "fast"], /--profile must be one of instant, base/],
    [["up", "--bogus"], /Unknown option '--bogus'/],
    [["launch"], /unknown command "launch"/],
  ])("rejects bad input %j with exit code 2", async (args, message) => {
    const { code, stderr } = await exitOf(runCli(args));
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it("exits 2 when the port is taken", async () => {
    const port = await getPort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
    try {
      const { code, stderr } = await exitOf(runCli(["up", "--port", String(port)]));
      expect(code).toBe(2);
      expect(stderr).toMatch(new RegExp(`Port ${port} .* in use`));
    } finally {
      holder.close();
    }
  });

  it("exits 2 for an unreachable fork URL and for a fork without USDC, leaving no anvil behind", async () => {
    const closed = await getPort();
    const port = await getPort();
    const unreachable = await exitOf(
      runCli(["up", "--port", String(port), "--fork-url", `http://127.0.0.1:${closed}`]),
    );
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/Cannot fork/);

    // A plain anvil, as 8453 but without the USDC placement.
    const upstream = anvilInstance({ port: await getPort(), chainId: 8453 });
    await upstream.start();
    try {
      const noUsdc = await exitOf(
        runCli(["up", "--port", String(port), "--fork-url", `http://127.0.0.1:${upstream.port}`]),
      );
      expect(noUsdc.code).toBe(2);
      expect(noUsdc.stderr).toMatch(/not Base's USDC|no contract at Base's USDC/);
      expect(await portIsFree(port)).toBe(true);
    } finally {
      await upstream.stop();
    }
  });
});
