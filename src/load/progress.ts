import type { RunMetrics } from "./metrics.ts";

export type ProgressOptions = { totalMs: number; stream?: NodeJS.WriteStream; label: string };

/**
 * Live progress: on a terminal, one line rewritten four times a second (rate, p50/p99, errors, elapsed
 * and remaining); elsewhere (CI), a plain line every 5 s. Returns a function that stops it.
 */
export function startProgress(metrics: RunMetrics, options: ProgressOptions): () => void {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const started = performance.now();
  let lastCount = 0;
  let lastAt = started;
  const line = () => {
    const now = performance.now();
    const rate = ((metrics.requests - lastCount) * 1000) / Math.max(1, now - lastAt);
    lastCount = metrics.requests;
    lastAt = now;
    const e2e = metrics.phaseLatency("e2e");
    const errors = Object.values(metrics.errors).reduce((a, b) => a + b, 0);
    const elapsed = (now - started) / 1000;
    const remaining = Math.max(0, options.totalMs / 1000 - elapsed);
    return `${options.label}  ${rate.toFixed(0)} req/s  p50 ${e2e?.p50 ?? "-"} ms  p99 ${e2e?.p99 ?? "-"} ms  errors ${errors}  ${elapsed.toFixed(0)}s elapsed, ${remaining.toFixed(0)}s left`;
  };
  const timer = setInterval(
    () => {
      if (tty) stream.write(`\r\u001b[2K${line()}`);
      else stream.write(`${line()}\n`);
    },
    tty ? 250 : 5_000,
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty) stream.write("\r\u001b[2K");
  };
}
