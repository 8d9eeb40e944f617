export { type ArtilleryEngineOptions, artilleryEngine } from "./artillery/engine.ts";
export {
  BaselineError,
  type Comparison,
  type ComparisonRow,
  compareReports,
  DEFAULT_GATE,
  facilitatorCallCount,
  formatComparison,
  type GateSettings,
  type Histogram,
  loadBaseline,
  type PaymentCost,
  paymentCost,
  type RankTest,
  rankTest,
  type Verdict,
  WireTally,
  type WireTotals,
} from "./baseline.ts";
export {
  type CapacityCpu,
  type CapacityLimit,
  type CapacityOptions,
  type CapacityPhase,
  type CapacityResult,
  type CapacityStep,
  type CapacityStop,
  type CapacityTrial,
  findCapacity,
  formatCapacity,
  limitOf,
  searchNotes,
} from "./capacity.ts";
export { gasUsedByTransactions, type LogPagesParameters, logPages, TRANSFER_EVENT } from "./chain-scan.ts";
export {
  agentChannels,
  type ChannelFlows,
  type ChannelScan,
  type ChannelScanOptions,
  channelInvariants,
  isChannelPath,
  type RunChannel,
  scanChannels,
  settleChannels,
} from "./channels.ts";
export {
  type CostOptions,
  type CostPrices,
  costOf,
  costPrices,
  DEFAULT_COST_PRICES,
  DEFAULT_L1_FEE_PARAMS,
  fjordL1Fee,
  flzCompressLen,
  formatCost,
  type L1FeeParams,
  readL1FeeParams,
  readL1FeeParamsAt,
  type SettlementCost,
} from "./cost.ts";
export {
  type AfterLoadContext,
  type AgentsSpec,
  type CaseContext,
  checkOverrides,
  checkScenario,
  DEFAULT_TARGET,
  defineScenario,
  type InvariantContext,
  type OverrideNames,
  type ScenarioCase,
  type ScenarioDefinition,
  type ScenarioInvariant,
} from "./define.ts";
export type { EngineSettings, LoadEngine, RunPlan } from "./engine.ts";
export {
  type BalanceSnapshot,
  moneyInvariants,
  type PaidRecord,
  type Settlement,
  type SettlementScan,
  type SettlementScanOptions,
  scanSettlements,
  settlementsBetween,
  usdcBalances,
} from "./invariants.ts";
export { type LoadSpec, loadSpecOf, type PolicySpec, unportableParts } from "./load-spec.ts";
export {
  challengeOf,
  type HandSignedPayment,
  type RawAnswer,
  sendRaw,
  signPayment,
} from "./raw-payment.ts";
export { loadScenario, SCENARIOS_DIR, scenarioNames, UnknownScenarioError } from "./registry.ts";
export type { InvariantResult, RunReport, ThresholdResult } from "./report.ts";
export { renderCapacityHtml } from "./report-html.ts";
export { effectiveModel, inProcessEngine, type RunOverrides, runScenario } from "./runner.ts";
export {
  type MemoryFigures,
  processRssMb,
  type RunSample,
  type SteadyState,
  type SteadyWindow,
  startSampler,
  steadyState,
  windowSeconds,
} from "./steady-state.ts";
export { formatSummary } from "./summary.ts";
export {
  DEFAULT_ATTACH_RPC_URL,
  knownUsdcOf,
  policyOn,
  type RunTarget,
  startTarget,
  TargetError,
  type TargetOptions,
} from "./target.ts";
export {
  evaluateThresholds,
  metricValue,
  parseThreshold,
  type Threshold,
  ThresholdSyntaxError,
} from "./thresholds.ts";
export { optionalPositive, positiveNumber, ScenarioInputError } from "./validate.ts";
