export {
  type ExecutionOptions,
  type ExecutionSummary,
  executeLoad,
  type Task,
  type TaskContext,
} from "./executor.ts";
export {
  type LatencySummary,
  type LoadMeasurements,
  PHASES,
  type Phase,
  RunMetrics,
  type Sample,
  type TimelinePoint,
  type WindowPoint,
} from "./metrics.ts";
export {
  arrivalSchedule,
  type ClosedModel,
  DEFAULT_MAX_IN_FLIGHT,
  describeModel,
  type LoadModel,
  modelDurationMs,
  type OpenModel,
  type OpenStage,
  rateAt,
  seededRandom,
  thinkTime,
} from "./models.ts";
export { type PathTable, pathOf } from "./path-table.ts";
export { type ProgressOptions, startProgress } from "./progress.ts";
