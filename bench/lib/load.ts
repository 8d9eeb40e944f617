import autocannon from "autocannon";
import * as hdr from "hdr-histogram-js";

export type LoadResult = {
  /** Answers that passed `accept` per second, over the measured window (after the warm-up). */
  rate: number;
  /** Answers in the measured window. */
  total: number;
  accepted: number;
  /** Failures in the measured window: non-2xx, refused answers, connection errors and timeouts. */
  failed: number;
  /** Latency of the measured window's answers, in milliseconds. */
  p50: number;
  p99: number;
  /** Length of the measured window. */
  seconds: number;
  /** Up to three refused answers, to say what went wrong. */
  samples: string[];
};

export type LoadOptions = {
  url: string;
  path: string;
  method?: "GET" | "POST";
  connections: number;
  /** Measured seconds, after the warm-up. */
  seconds: number;
  /**
   * Seconds at full load before measuring (connections opened, queues and batches filled); answers in
   * that time are not counted. Default 0.
   */
  warmupSeconds?: number;
  /**
   * Called once per request: its body (POST) or extra headers (GET). Must never repeat a payment;
   * `undefined` when there is nothing left to send, which ends the run early.
   */
  next: () => { body?: string; headers?: Record<string, string> } | undefined;
  /** Whether an answer counts; by default any 2xx. Header names are as the server sent them. */
  accept?: (status: number, body: string, headers: Record<string, string | string[] | undefined>) => boolean;
};

/**
 * autocannon, in this process, at a fixed number of connections: the closed-loop saturation throughput
 * and its latency over a window that starts after a warm-up at full load. Each request gets a fresh body
 * or header set from `next`; when `next` runs dry the run stops, and the window ends there.
 */
export async function saturate(options: LoadOptions): Promise<LoadResult> {
  const warmup = options.warmupSeconds ?? 0;
  const accept = options.accept ?? ((status) => status >= 200 && status < 300);
  const baseHeaders: Record<string, string> =
    options.method === "GET" ? {} : { "content-type": "application/json" };
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const samples: string[] = [];
  let accepted = 0;
  let refused = 0;
  let errors = 0;
  let exhausted = false;
  const started = performance.now();
  const windowStart = started + warmup * 1000;
  let windowEnd: number | undefined;
  const measuring = () => performance.now() >= windowStart && !exhausted;

  let instance: autocannon.Instance | undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: warmup + options.seconds,
        timeout: 30,
        requests: [
          {
            method: options.method ?? "POST",
            path: options.path,
            setupRequest: (request) => {
              const next = exhausted ? undefined : options.next();
              if (!next) {
                // Out of distinct payments: stop rather than send one twice.
                if (!exhausted) {
                  exhausted = true;
                  windowEnd = performance.now();
                  setImmediate(() => instance?.stop());
                }
                return { ...request, method: "GET", path: "/health", body: undefined, headers: {} };
              }
              return { ...request, body: next.body, headers: { ...baseHeaders, ...next.headers } };
            },
            onResponse: (status, body, _context, headers) => {
              if (!measuring()) return;
              if (accept(status, body, headers as Record<string, string | string[] | undefined>)) accepted++;
              else {
                refused++;
                if (samples.length < 3) samples.push(`${status} ${body.slice(0, 300)}`);
              }
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      if (measuring()) latency.recordValue(Math.max(1, Math.round(responseTime * 1000)));
    });
    instance.on("reqError", () => {
      if (measuring()) errors++;
    });
  });
  await done;
  const end = windowEnd ?? performance.now();
  const seconds = Math.max(0.001, (end - windowStart) / 1000);
  const result: LoadResult = {
    rate: accepted / seconds,
    total: accepted + refused,
    accepted,
    failed: refused + errors,
    p50: latency.totalCount ? Math.round(latency.getValueAtPercentile(50) / 10) / 100 : Number.NaN,
    p99: latency.totalCount ? Math.round(latency.getValueAtPercentile(99) / 10) / 100 : Number.NaN,
    seconds: Math.round(seconds * 100) / 100,
    samples,
  };
  latency.destroy();
  return result;
}
