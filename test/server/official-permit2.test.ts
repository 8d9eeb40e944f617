import { x402Client } from "@x402/core/client";
import { ExactEvmScheme as ExactClient } from "@x402/evm/exact/client";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { type Address, erc20Abi, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "../../src/agents/index.ts";
import { approvePermit2, type Devnet, startDevnet, USDC_ADDRESS } from "../../src/chain/index.ts";
import { type Facilitator, startFacilitator } from "../../src/facilitator/index.ts";
import { devnetAccount } from "../support/accounts.ts";
import { officialFacilitator } from "../support/official-facilitator.ts";
import { serveOfficialFacilitator } from "../support/official-facilitator-http.ts";
import { startOfficialPermit2Server } from "../support/official-server.ts";

// The official server (@x402/express with the official exact and upto schemes) selling the Permit2 paths:
// paid by our agents and by the official client, settled by our facilitator and by the official one, on
// our contracts.
let devnet: Devnet;
let ours: Facilitator;
let official: { url: string; stop(): Promise<void> };
const servers: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  devnet = await startDevnet({ accounts: 6 });
  const [relayer, officialRelayer] = [devnetAccount(devnet, 4), devnetAccount(devnet, 5)];
  ours = await startFacilitator({
    permit2: { rpcUrl: devnet.rpcUrl, chainId: devnet.chainId, relayerKeys: [relayer.privateKey] },
  });
  official = await serveOfficialFacilitator(
    officialFacilitator(devnet.rpcUrl, devnet.chainId, officialRelayer.privateKey, { upto: true }),
  );
  await approvePermit2(
    devnet.client,
    [0, 1].map((i) => devnetAccount(devnet, i)),
    USDC_ADDRESS,
    false,
  );
}, 60_000);
afterAll(async () => {
  for (const server of servers) await server.stop();
  await ours?.stop();
  await official?.stop();
  await devnet?.stop();
});

const balanceOf = (address: Address) =>
  devnet.client.readContract({
    address: USDC_ADDRESS,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

async function serverThrough(facilitatorUrl: string) {
  const server = await startOfficialPermit2Server(facilitatorUrl, devnetAccount(devnet, 3).address);
  servers.push(server);
  return server;
}

const payers = {
  "our agent": async (privateKey: Hex, url: string) => {
    const result = await createAgent({ privateKey }).request(url);
    return result.status;
  },
  "the official client": async (privateKey: Hex, url: string) => {
    const signer = privateKeyToAccount(privateKey);
    const client = new x402Client()
      .register(`eip155:${devnet.chainId}`, new UptoClient(signer))
      .register(`eip155:${devnet.chainId}`, new ExactClient(signer));
    return (await wrapFetchWithPayment(fetch, client)(url)).status;
  },
};

describe.each([
  ["our facilitator", () => ours.url],
  ["the official facilitator", () => official.url],
])("the official server through %s", (_facilitator, facilitatorUrl) => {
  it.each(Object.keys(payers) as (keyof typeof payers)[])(
    "is paid by %s on both Permit2 paths",
    async (who) => {
      const server = await serverThrough(facilitatorUrl());
      const payer = devnetAccount(devnet, who === "our agent" ? 0 : 1);
      const payee = devnetAccount(devnet, 3).address;
      for (const [path, charged] of [
        ["/exact/evm/permit2", 1_000n],
        ["/upto/evm/permit2", 1_500n],
      ] as const) {
        const before = await Promise.all([balanceOf(payer.address), balanceOf(payee)]);
        expect(await payers[who](payer.privateKey, `${server.url}${path}`)).toBe(200);
        expect(await Promise.all([balanceOf(payer.address), balanceOf(payee)])).toEqual([
          (before[0] ?? 0n) - charged,
          (before[1] ?? 0n) + charged,
        ]);
      }
    },
  );
});
