export {
  type AnvilParameters,
  anvilInstance,
  assertPortFree,
  PRUNED_STATES,
  resolveAnvilBinary,
} from "./anvil.ts";
export {
  erc3009DepositCollectorAbi,
  mockErc20Abi,
  mockUsdcAbi,
  multicall3Abi,
  payoutSplitterAbi,
  permit2Abi,
  permit2DepositCollectorAbi,
  x402BatchSettlementAbi,
  x402ExactPermit2ProxyAbi,
  x402UptoPermit2ProxyAbi,
} from "./artifacts.generated.ts";
export { type AttachOptions, connectDevnet } from "./attach.ts";
export * from "./base-profile.ts";
export { createDevnetClient, type DevnetClient } from "./client.ts";
export { DEFAULT_FUNDING, type Devnet, type DevnetOptions, startDevnet } from "./devnet.ts";
export * from "./errors.ts";
export { approvePermit2, type FundingParameters, fundAccounts } from "./funding.ts";
export { minerOf } from "./miner.ts";
export {
  deployPayoutSplitter,
  readPayoutSplitter,
  type Split,
  splitPayout,
  TOTAL_SHARES,
} from "./payout-splitter.ts";
export { MOCK_USDC_ADMIN, sendAsAdmin } from "./placement.ts";
export { ATTACH_ROLE, probeRpcUrl } from "./rpc-probe.ts";
export type { ChainStatus, StallWatchOptions } from "./stall.ts";
export { type DevnetAccount, deriveAccounts, HD_RANGES } from "./wallets.ts";
