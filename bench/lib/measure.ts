import { Bench } from "tinybench";

/** Operations per second of each task, run one call at a time for `time` ms after a warm-up. */
export async function measure(
  time: number,
  tasks: Record<string, () => unknown>,
): Promise<Record<string, number>> {
  const bench = new Bench({ time, warmup: true, throws: true });
  for (const [name, fn] of Object.entries(tasks)) bench.add(name, fn);
  await bench.run();
  const out: Record<string, number> = {};
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
    out[task.name] = 1000 / result.period;
  }
  return out;
}
