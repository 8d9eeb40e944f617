import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { type FacilitatorScheme, settlementLoadOf } from "./scheme.ts";

/** Prometheus metrics of one facilitator; each instance has its own registry, so several can share a process. */
export class FacilitatorMetrics {
  readonly registry = new Registry();

  constructor(schemes: readonly FacilitatorScheme[] = []) {
    // Read from the schemes' own counters when scraped: the hot path pays one Map update per call.
    new Counter({
      name: "x402_facilitator_rpc_calls_total",
      help: "JSON-RPC calls to the chain's node, by method",
      labelNames: ["method"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const scheme of schemes) {
          for (const [method, count] of scheme.rpcCalls?.byMethod() ?? []) this.inc({ method }, count);
        }
      },
    });
    // Whether settlements wait for a relayer key or for the chain: a queue with every key busy is the
    // relayers' limit; free keys with slow settlements are the chain's.
    new Gauge({
      name: "x402_facilitator_relayers_busy",
      help: "Relayer keys with a settlement transaction sent and not yet mined",
      registers: [this.registry],
      collect() {
        this.set(settlementLoadOf(schemes).busy);
      },
    });
    new Gauge({
      name: "x402_facilitator_settlements_queued",
      help: "Settlements waiting for a free relayer key",
      registers: [this.registry],
      collect() {
        this.set(settlementLoadOf(schemes).queued);
      },
    });
  }

  /** Requests by route, outcome (`valid`/`invalid`, `settled`/`failed`, `bad_request`) and x402 code. */
  readonly requests = new Counter({
    name: "x402_facilitator_requests_total",
    help: "Facilitator requests by route, outcome and x402 code",
    labelNames: ["route", "outcome", "code"] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: "x402_facilitator_request_duration_seconds",
    help: "Time to answer /verify and /settle",
    labelNames: ["route"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [this.registry],
  });
}
