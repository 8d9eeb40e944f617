export {
  drainEth,
  dropTransaction,
  pauseMining,
  pendingTransactions,
  poolDrained,
  type ReorgOptions,
  type ReorgResult,
  reorg,
  resumeMining,
  spikeBaseFee,
} from "./chain.ts";
export { type ChaosResult, type ChaosStep, type ChaosTarget, runChaos } from "./chaos.ts";
export type {
  DropFault,
  Fault,
  FaultKind,
  FaultMatch,
  FaultPlan,
  HangFault,
  LatencyFault,
  Pattern,
  RpcErrorFault,
  StatusFault,
} from "./plan.ts";
export {
  type FaultEvent,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultProxyStats,
  faultOnce,
  startFaultProxy,
} from "./proxy.ts";
