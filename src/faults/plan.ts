import type { JsonRpcBody } from "./jsonrpc.ts";

/** Matches a path or a JSON-RPC method: exactly, as a prefix when the string ends in `*`, or a RegExp. */
export type Pattern = string | RegExp;

/** Which requests a fault applies to; every field given must match. No `match` means every request. */
export type FaultMatch = {
  /** HTTP method, case-insensitive. */
  method?: string;
  /** The request path, without its query string. */
  path?: Pattern;
  /**
   * JSON-RPC method names, e.g. `"eth_sendRawTransaction*"` (which also covers `eth_sendRawTransactionSync`)
   * or `["eth_call", "eth_estimateGas"]`. A batch matches when any of its calls does, and is then faulted as
   * a whole: real transports fail whole HTTP requests, so the other calls of the batch fail with it.
   */
  rpcMethod?: Pattern | readonly Pattern[];
};

type FaultBase = {
  /** Chance (0..1) that a matching request gets this fault, drawn from the proxy's seeded RNG; default 1. */
  probability?: number;
  match?: FaultMatch;
};

/** Delays the request before whatever happens next (forwarding, or another fault's answer). */
export type LatencyFault = FaultBase & { kind: "latency"; ms: number | readonly [min: number, max: number] };

/**
 * Answers with this status (e.g. 429, 500, 502, 503) instead of the target's answer. With `afterForward`
 * the request reaches the target first, so its side effect happens, and only the answer is replaced.
 */
export type StatusFault = FaultBase & {
  kind: "status";
  status: number;
  body?: string;
  afterForward?: boolean;
};

/**
 * Resets the client's connection without an answer. With `afterForward` the target handles the request
 * first: the work is done, the client never learns of it.
 */
export type DropFault = FaultBase & { kind: "drop"; afterForward?: boolean };

/**
 * Holds the request unanswered, so the client's own timeout has to end it. A plan change releases held
 * requests to the target (the stall is over); stopping the proxy closes their connections.
 */
export type HangFault = FaultBase & { kind: "hang" };

/** Answers each JSON-RPC call with `{ jsonrpc, id, error: { code, message } }` instead of forwarding. */
export type RpcErrorFault = FaultBase & { kind: "rpcError"; code?: number; message?: string };

export type Fault = LatencyFault | StatusFault | DropFault | HangFault | RpcErrorFault;
export type FaultKind = Fault["kind"];
export type TerminalFault = Exclude<Fault, LatencyFault>;

/**
 * What the proxy does to requests. Faults are considered in order: every latency fault that fires adds its
 * delay, and the first other fault that fires decides the outcome. `down` closes the listening socket
 * (connection refused) and resets open connections until a plan without it is set.
 */
export type FaultPlan = { down?: boolean; faults?: readonly Fault[] };

export const FAULT_KINDS = [
  "latency",
  "status",
  "drop",
  "hang",
  "rpcError",
] as const satisfies readonly FaultKind[];

/** What the plan sees of a request; the JSON-RPC body is parsed only if a fault asks about it. */
export type RequestView = { method: string; path: string; rpc: () => JsonRpcBody | undefined };

export type Decision = { delayMs: number; latencyFaults: number; outcome: TerminalFault | undefined };

const matchesPattern = (pattern: Pattern, value: string) =>
  typeof pattern === "string"
    ? pattern.endsWith("*")
      ? value.startsWith(pattern.slice(0, -1))
      : value === pattern
    : pattern.test(value);

function matches(match: FaultMatch | undefined, request: RequestView): boolean {
  if (!match) return true;
  if (match.method !== undefined && match.method.toUpperCase() !== request.method.toUpperCase()) return false;
  if (match.path !== undefined && !matchesPattern(match.path, request.path)) return false;
  if (match.rpcMethod !== undefined) {
    const patterns: readonly Pattern[] = Array.isArray(match.rpcMethod) ? match.rpcMethod : [match.rpcMethod];
    const calls = request.rpc()?.calls ?? [];
    return calls.some((call) => patterns.some((pattern) => matchesPattern(pattern, call.method)));
  }
  return true;
}

/**
 * Decides a request's fate. Only matching faults that carry a `probability` draw from `random`, one draw
 * each in plan order (and latency ranges one more), so a seed replays the same faults for the same
 * sequence of requests.
 */
export function decide(plan: FaultPlan, request: RequestView, random: () => number): Decision {
  let delayMs = 0;
  let latencyFaults = 0;
  for (const fault of plan.faults ?? []) {
    if (!matches(fault.match, request)) continue;
    if (fault.probability !== undefined && random() >= fault.probability) continue;
    if (fault.kind !== "latency") return { delayMs, latencyFaults, outcome: fault };
    latencyFaults += 1;
    delayMs += typeof fault.ms === "number" ? fault.ms : fault.ms[0] + random() * (fault.ms[1] - fault.ms[0]);
  }
  return { delayMs, latencyFaults, outcome: undefined };
}

/** Rejects a plan that could only misbehave later, inside a request, where nobody would see why. */
export function validatePlan(plan: FaultPlan): void {
  for (const [index, fault] of (plan.faults ?? []).entries()) {
    const where = `faults[${index}] (${fault.kind})`;
    const { probability } = fault;
    if (probability !== undefined && !(probability >= 0 && probability <= 1))
      throw new RangeError(`${where}: probability must be within 0..1, got ${probability}.`);
    if (fault.kind === "latency") {
      const [min, max] = typeof fault.ms === "number" ? [fault.ms, fault.ms] : fault.ms;
      if (!(Number.isFinite(min) && Number.isFinite(max) && min >= 0 && min <= max))
        throw new RangeError(
          `${where}: ms must be a finite delay >= 0, or a [min, max] range with min <= max.`,
        );
    }
    if (
      fault.kind === "status" &&
      !(Number.isInteger(fault.status) && fault.status >= 400 && fault.status <= 599)
    )
      throw new RangeError(`${where}: status must be an HTTP error status (400-599), got ${fault.status}.`);
    if (fault.kind === "rpcError" && fault.code !== undefined && !Number.isInteger(fault.code))
      throw new RangeError(`${where}: code must be an integer, got ${fault.code}.`);
  }
}
