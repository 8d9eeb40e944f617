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
  /**
   * Also the Permit2 paths (`exact` by Permit2, `upto`): ours settles them from these keys of their own;
   * the official one from its one key.
   */
  permit2Keys?: Hex[];
  /**
   * Also `batch-settlement`: sent from these keys of their own (the official one from the first), claims
   * and refunds signed as the receiver authorizer, which both advertise on `/supported`.
   */
  batch?: { relayerKeys: Hex[]; receiverAuthorizerKey: Hex };
};

function officialBatchKeys(keys: NonNullable<FacilitatorServerConfig["batch"]>) {
  const [relayerKey] = keys.relayerKeys;
  if (!relayerKey) throw new Error("batch-settlement needs a relayer key");
  return { relayerKey, authorizerKey: keys.receiverAuthorizerKey };
}

let stop: () => Promise<void> = async () => {};
const config = serverMain<FacilitatorServerConfig>(() => stop());
const { rpcUrl, chainId, batch } = config;

if (config.impl === "ours") {
  const facilitator = await startFacilitator({
    exact: { rpcUrl, chainId, relayerKeys: config.relayerKeys, maxBatch: config.maxBatch },
    ...(config.permit2Keys ? { permit2: { rpcUrl, chainId, relayerKeys: config.permit2Keys } } : {}),
    ...(batch ? { batchSettlement: { rpcUrl, chainId, ...batch } } : {}),
  });
  stop = facilitator.stop;
  process.stdout.write(`${JSON.stringify({ url: facilitator.url, pid: process.pid })}\n`);
} else {
  const [relayerKey] = config.relayerKeys;
  if (!relayerKey) throw new Error("the official facilitator needs one relayer key");
  const facilitator = await startOfficialFacilitator({
    rpcUrl,
    chainId,
    relayerKey,
    upto: config.permit2Keys !== undefined,
    ...(batch ? { batch: officialBatchKeys(batch) } : {}),
  });
  stop = facilitator.stop;
  process.stdout.write(`${JSON.stringify({ url: facilitator.url, pid: process.pid })}\n`);
}
