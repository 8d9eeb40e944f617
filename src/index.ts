/**
 * x402-devnet's public API: everything a user composes a payment system or a load test from, in the
 * order of the data path: devnet → facilitator and server → agents → scenarios and reports.
 */
export * from "./agents/index.ts";
export * from "./chain/index.ts";
export * from "./facilitator/index.ts";
export * from "./faults/index.ts";
export * from "./load/index.ts";
export * from "./scenario/index.ts";
export { renderHtmlReport } from "./scenario/report-html.ts";
export * from "./server/index.ts";
export { defaultRoutes, type Stack, type StackOptions, startStack } from "./stack.ts";
