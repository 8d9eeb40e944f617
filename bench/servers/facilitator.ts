import type { Hex } from "viem";
import { startFacilitator } from "../../src/facilitator/index.ts";
import { serverMain } from "../lib/child.ts";
import { startOfficialFacilitator } from "../official-facilitator.ts";

export type FacilitatorServerConfig = {
  impl: "ours" | "official";
  rpcUrl: string;
  chainId: number;
  relayerKeys: Hex[];
  maxBatch?: number;
};

let stop: () => Promise<void> = async () => {};
const config = serverMain<FacilitatorServerConfig>(() => stop());

if (config.impl === "ours") {
  const facilitator = await startFacilitator({
    exact: {
      rpcUrl: config.rpcUrl,
      chainId: config.chainId,
      relayerKeys: config.relayerKeys,
      maxBatch: config.maxBatch,
    },
  });
  stop = facilitator.stop;
  process.stdout.write(`${JSON.stringify({ url: facilitator.url, pid: process.pid })}\n`);
} else {
  const [relayerKey] = config.relayerKeys;
  if (!relayerKey) throw new Error("the official facilitator needs one relayer key");
  const facilitator = await startOfficialFacilitator({
    rpcUrl: config.rpcUrl,
    chainId: config.chainId,
    relayerKey,
  });
  stop = facilitator.stop;
  process.stdout.write(`${JSON.stringify({ url: facilitator.url, pid: process.pid })}\n`);
}
