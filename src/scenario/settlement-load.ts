import type { SettlementLoad } from "../facilitator/index.ts";

/**
 * The in-process facilitator's settlement pipeline over a run: how much of the time its relayer keys were
 * all taken, and how many settlements waited for one. Settlements that wait with every key busy wait on the
 * relayers; settlements that are slow with keys free wait on the chain's blocks.
 */
export type SettlementLoadFigures = {
  relayers: number;
  /** Mean share of the keys busy, 0–1. */
  busyShare: number;
  /** Share of the samples in which every key was busy, 0–1. */
  allBusyShare: number;
  /** Settlements waiting for a key: mean and most, over the samples. */
  queuedMean: number;
  queuedMax: number;
  samples: number;
};

// Often enough to see a queue that forms and drains within a 200 ms block; a read is three property loads.
const SAMPLE_EVERY_MS = 20;

const round = (value: number) => Math.round(value * 100) / 100;

/** Samples `read` until stopped; undefined when nothing was sampled or the pipeline has no relayer. */
export function watchSettlementLoad(read: () => SettlementLoad): {
  stop(): SettlementLoadFigures | undefined;
} {
  let samples = 0;
  let relayers = 0;
  let busy = 0;
  let allBusy = 0;
  let queued = 0;
  let queuedMax = 0;
  const take = () => {
    const load = read();
    if (load.relayers === 0) return;
    samples += 1;
    relayers = load.relayers;
    busy += load.busy / load.relayers;
    if (load.busy >= load.relayers) allBusy += 1;
    queued += load.queued;
    queuedMax = Math.max(queuedMax, load.queued);
  };
  const timer = setInterval(take, SAMPLE_EVERY_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      take();
      if (samples === 0) return undefined;
      return {
        relayers,
        busyShare: round(busy / samples),
        allBusyShare: round(allBusy / samples),
        queuedMean: round(queued / samples),
        queuedMax,
        samples,
      };
    },
  };
}
