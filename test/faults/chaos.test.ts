import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultPlan, runChaos, startFaultProxy } from "../../src/faults/index.ts";
import { newAgent, send, startTarget } from "./harness.ts";

let target: Awaited<ReturnType<typeof startTarget>>;
const agent = newAgent();
beforeAll(async () => {
  target = await startTarget();
});
afterAll(async () => {
  await agent.close();
  await target.stop();
});

describe("runChaos", () => {
  it("applies each plan at its time, in time order, and returns after the last", async () => {
    const proxy = await startFaultProxy({ target: target.url });
    try {
      const applied: { atMs: number; outcome: number | string | undefined }[] = [];
      const started = performance.now();
      // Probing right after each switch shows what a client sees during that step.
      const probe = {
        async setFaults(plan: FaultPlan) {
          await proxy.setFaults(plan);
          // A fresh agent, so the probe opens a connection (and sees a refusal while down).
          const fresh = newAgent();
          const answer = await send(`${proxy.url}/probe`, { dispatcher: fresh });
          await fresh.close();
          applied.push({ atMs: performance.now() - started, outcome: answer.status ?? answer.error });
        },
      };
      const result = await runChaos(probe, [
        { atMs: 160, plan: {} },
        { atMs: 0, plan: { faults: [{ kind: "status", status: 503 }] } },
        { atMs: 80, plan: { down: true } },
      ]);

      expect(result).toEqual({ applied: 3, aborted: false });
      expect(applied.map((step) => step.outcome)).toEqual([503, "ECONNREFUSED", 200]);
      expect(applied[1]?.atMs).toBeGreaterThanOrEqual(80);
      expect(applied[2]?.atMs).toBeGreaterThanOrEqual(160);
      expect((await send(`${proxy.url}/after`, { dispatcher: agent })).status).toBe(200);
    } finally {
      await proxy.stop();
    }
  });

  it("stops at once when aborted, leaving later steps unapplied", async () => {
    const controller = new AbortController();
    const plans: FaultPlan[] = [];
    const recorder = {
      async setFaults(plan: FaultPlan) {
        plans.push(plan);
        controller.abort();
      },
    };
    const started = performance.now();
    const result = await runChaos(
      recorder,
      [
        { atMs: 0, plan: { down: true } },
        { atMs: 60_000, plan: {} },
      ],
      controller.signal,
    );
    expect(result).toEqual({ applied: 1, aborted: true });
    expect(plans).toEqual([{ down: true }]);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("applies nothing under an already aborted signal, and rejects step times it cannot honour", async () => {
    const plans: FaultPlan[] = [];
    const recorder = { setFaults: async (plan: FaultPlan) => void plans.push(plan) };
    expect(await runChaos(recorder, [{ atMs: 0, plan: {} }], AbortSignal.abort())).toEqual({
      applied: 0,
      aborted: true,
    });
    await expect(runChaos(recorder, [{ atMs: Number.NaN, plan: {} }])).rejects.toThrow(RangeError);
    await expect(runChaos(recorder, [{ atMs: -1, plan: {} }])).rejects.toThrow(RangeError);
    expect(plans).toEqual([]);
  });
});
