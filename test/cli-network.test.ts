import { randomUUID } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { NETWORKS } from "../src/chain/index.ts";
import { decodePaymentRequiredHeader, PAYMENT_REQUIRED_HEADER } from "../src/protocol/index.ts";
import { killStarted, startCli } from "./support/scenario.ts";

afterEach(killStarted);

const SEPOLIA_USDC = NETWORKS["base-sepolia"].usdc;

describe("x402-devnet up --network base-sepolia", () => {
  it("runs chain 84532 with Base Sepolia's USDC, says so when ready, and prices the server's route in it", async () => {
    const cli = startCli([
      "up",
      ...["--network", "base-sepolia"],
      ...["--port", "0", "--facilitator-port", "0", "--server-port", "0", "--accounts", "1"],
    ]);
    const [line] = await cli.waitFor("stdout", /^\{.*\}\n/);
    const ready = JSON.parse(line) as { rpcUrl: string; serverUrl: string; facilitatorUrl: string };
    expect(ready).toMatchObject({
      event: "ready",
      chainId: 84532,
      network: "base-sepolia",
      caip2: "eip155:84532",
      usdc: SEPOLIA_USDC.address,
      usdcDomain: { name: "USDC", version: "2" },
    });
    const chainId = await fetch(ready.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
    });
    expect(((await chainId.json()) as { result: string }).result).toBe("0x14a34");

    const unpaid = await fetch(`${ready.serverUrl}/weather`);
    expect(unpaid.status).toBe(402);
    const { accepts } = decodePaymentRequiredHeader(unpaid.headers.get(PAYMENT_REQUIRED_HEADER) ?? "");
    expect(accepts).toEqual([
      expect.objectContaining({
        network: "eip155:84532",
        asset: SEPOLIA_USDC.address,
        amount: "1000",
        extra: expect.objectContaining({ name: "USDC", version: "2" }),
      }),
    ]);
    const supported = (await (await fetch(`${ready.facilitatorUrl}/supported`)).json()) as {
      kinds: { x402Version: number; network: string }[];
    };
    expect(supported.kinds.map((k) => `${k.x402Version} ${k.network}`)).toEqual(
      expect.arrayContaining(["2 eip155:84532", "1 base-sepolia"]),
    );

    await cli.waitFor("stderr", /x402 devnet up as Base Sepolia/);
    expect(cli.output.stderr).toContain(`usdc       ${SEPOLIA_USDC.address}   "USDC" version 2`);
    cli.child.kill("SIGINT");
    expect((await cli.exited).code).toBe(0);
  });
});

describe("x402-devnet scenario --network base-sepolia", () => {
  it("runs the scenario on a Base Sepolia devnet and passes", async () => {
    const json = join(tmpdir(), `x402-network-${randomUUID()}.json`);
    onTestFinished(() => rm(json, { force: true }));
    const cli = startCli([
      "scenario",
      "per-request",
      ...["--network", "base-sepolia", "--agents", "2", "--duration", "2s", "--json", json],
    ]);
    const { code } = await cli.exited;
    expect(code, cli.output.stderr).toBe(0);
    const report = JSON.parse(await readFile(json, "utf8")) as {
      ok: boolean;
      outcomes: { paid: number };
      config: { devnet: unknown };
    };
    expect(report.ok).toBe(true);
    expect(report.outcomes.paid).toBeGreaterThan(0);
    expect(report.config.devnet).toMatchObject({ network: "base-sepolia", chainId: 84532 });
  });
});

describe("--network: bad input", () => {
  it.each([
    [
      ["up", "--network", "base-goerli"],
      "--network must be one of base, base-sepolia, got base-goerli (see x402-devnet up --help)",
    ],
    [
      ["scenario", "--network", "sepolia"],
      "--network must be one of base, base-sepolia, got sepolia (see x402-devnet scenario --help)",
    ],
    [
      ["scenario", "--network", "base-sepolia", "--rpc-url", "http://127.0.0.1:9"],
      "--network chooses the devnet a run starts; with --rpc-url the run uses one already running: pass --network to `x402-devnet up` instead",
    ],
  ])("%j: exit 2 and one line on stderr", async (args, message) => {
    const cli = startCli(args);
    const { code } = await cli.exited;
    expect(code).toBe(2);
    expect(cli.output.stdout).toBe("");
    expect(cli.output.stderr).toBe(`x402-devnet: ${message}\n`);
  });
});
