import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import getPort from "get-port";
import { afterEach, describe, expect, it } from "vitest";
import { anvilInstance } from "../src/chain/index.ts";
import { portIsFree } from "./support/scenario.ts";

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
    const payTo = expect.stringMatching(/^0x[0-9a-fA-F]{40}$/);
    const usdc = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
    expect(ready.routes).toEqual(
      [
        ["/weather", "1000", "exact", "eip3009"],
        ["/exact/evm/eip3009", "1000", "exact", "eip3009"],
        ["/exact/evm/permit2", "1000", "exact", "permit2"],
        ["/upto/evm/permit2", "10000", "upto", "permit2"],
        ["/batch-settlement/evm/eip3009", "1000", "batch-settlement", "eip3009"],
        ["/batch-settlement/evm/permit2", "1000", "batch-settlement", "permit2"],
      ].map(([path, price, scheme, assetTransferMethod]) => ({
        method: "GET",
        path,
        price,
        payTo,
        scheme,
        assetTransferMethod,
        asset: usdc,
      })),
    );
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
    [["up", "--port", "abc"], /--port must be a port from 0 to 65535 \(0 takes a free one\), got abc/],
    [["up", "--profile", "fast"], /--profile must be one of instant, base/],
    [["up", "--bogus"], /unknown option --bogus/],
    [["launch"], /unknown command "launch"/],
  ])("rejects bad input %j with exit code 2", async (args, message) => {
    const { code, stderr } = await exitOf(runCli(args));
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it("takes free ports for --port 0, --facilitator-port 0 and --server-port 0 and says which", async () => {
    const child = runCli([
      "up",
      "--port",
      "0",
      "--facilitator-port",
      "0",
      "--server-port",
      "0",
      "--accounts",
      "1",
    ]);
    const exit = exitOf(child);
    const [line] = (await once(createInterface({ input: child.stdout }), "line")) as [string];
    const ready = JSON.parse(line) as { rpcUrl: string; facilitatorUrl: string; serverUrl: string };
    const ports = [ready.rpcUrl, ready.facilitatorUrl, ready.serverUrl].map((url) =>
      Number(new URL(url).port),
    );
    for (const port of ports) expect(port).toBeGreaterThan(0);
    expect(new Set(ports).size).toBe(3);
    const chainId = await fetch(ready.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
    });
    expect(((await chainId.json()) as { result: string }).result).toBe("0x2105");
    expect((await fetch(`${ready.facilitatorUrl}/supported`)).status).toBe(200);
    expect((await fetch(`${ready.serverUrl}/weather`)).status).toBe(402);

    child.kill("SIGINT");
    expect((await exit).code).toBe(0);
    for (const port of ports) expect(await portIsFree(port)).toBe(true);
  });

  it.each(["--port", "--facilitator-port", "--server-port"])(
    "exits 2 before starting anything when the %s port is taken, in one line and no stack trace",
    async (flag) => {
      const port = await getPort();
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
      try {
        const ports = {
          "--port": "0",
          "--facilitator-port": "0",
          "--server-port": "0",
          [flag]: String(port),
        };
        const { code, stderr } = await exitOf(runCli(["up", ...Object.entries(ports).flat()]));
        expect(code).toBe(2);
        expect(stderr).toBe(
          `x402-devnet: Port ${port} on 127.0.0.1 is already in use.\n  Pass another ${flag}, or stop what holds it.\n`,
        );
      } finally {
        holder.close();
      }
    },
  );

  it("exits 2 when two of its ports are the same", async () => {
    const port = String(await getPort());
    const { code, stderr } = await exitOf(runCli(["up", "--port", port, "--server-port", port]));
    expect(code).toBe(2);
    expect(stderr).toBe(
      `x402-devnet: --server-port ${port} is the same port as --port (see x402-devnet up --help)\n`,
    );
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
