import { execFile } from "node:child_process";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { createBrotliDecompress } from "node:zlib";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TimelinePoint } from "../../src/load/index.ts";
import type { CapacityResult, CapacityStep } from "../../src/scenario/capacity.ts";
import type { RunReport } from "../../src/scenario/report.ts";
import { renderCapacityHtml, renderHtmlReport } from "../../src/scenario/report-html.ts";
import { steadyStateFixture } from "../support/steady-state.ts";

/** Debian's Chromium, which .ci/install-chromium installs; X402_CHROMIUM names another browser to prefer. */
const PREFERRED_CHROMIUM = process.env.X402_CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps trying to reach Google, which a closed network refuses.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

type Browser = { executablePath: string; env?: Record<string, string> };

/** Unpacks a brotli-compressed tar into `dir` with the system's tar, which every Debian has. */
async function untar(archive: string, dir: string): Promise<void> {
  // Through a file, not a pipe: tar stops reading at the archive's end marker and would close the pipe early.
  const unpacked = join(dir, "archive.tar");
  await pipeline(createReadStream(archive), createBrotliDecompress(), createWriteStream(unpacked));
  await promisify(execFile)("tar", ["-x", "--no-same-owner", "-f", unpacked, "-C", dir]);
  await rm(unpacked);
}

/**
 * The Chromium that the @sparticuz/chromium npm package ships brotli-compressed, unpacked once per version
 * into node_modules/.cache. Not through the package's own executablePath(): that unpacks in place to a fixed
 * /tmp/chromium, where a run killed midway leaves a truncated browser that every later run trusts, and adds
 * the NSS libraries the browser links against only on Amazon Linux. Here the unpacking happens in a
 * directory of its own that is renamed into place whole, and the browser always gets the shipped libraries
 * and fonts, so it needs nothing from the machine but glibc.
 */
async function npmChromium(): Promise<Browser> {
  const require = createRequire(import.meta.url);
  // The package exports no package.json; its CommonJS entry is build/cjs/index.cjs.
  const root = join(dirname(require.resolve("@sparticuz/chromium")), "..", "..");
  const { version } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
  const dir = fileURLToPath(
    new URL(`../../node_modules/.cache/x402-devnet/chromium-${version}`, import.meta.url),
  );
  const executablePath = join(dir, "chromium");
  const libraries = [join(dir, "lib"), process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  const env = {
    ...(process.env as Record<string, string>),
    LD_LIBRARY_PATH: libraries,
    FONTCONFIG_PATH: dir,
  };
  if (
    await access(executablePath, constants.X_OK).then(
      () => true,
      () => false,
    )
  )
    return { executablePath, env };

  const staging = `${dir}.${process.pid}.partial`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    await pipeline(
      createReadStream(join(root, "bin", "chromium.br")),
      createBrotliDecompress(),
      createWriteStream(join(staging, "chromium"), { mode: 0o755 }),
    );
    await untar(join(root, "bin", "al2023.tar.br"), staging);
    await untar(join(root, "bin", "fonts.tar.br"), staging);
    // The shipped fonts.conf looks in Lambda's directories; this one looks where the fonts were unpacked.
    await writeFile(
      join(staging, "fonts.conf"),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${join(dir, "fonts")}</dir><cachedir>${join(dir, "fonts-cache")}</cachedir></fontconfig>\n`,
    );
    await rename(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    // Another test process unpacked the same version first: its copy serves as well as ours.
    if (
      await access(executablePath, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return { executablePath, env };
    throw error;
  }
  return { executablePath, env };
}

const launch = (profile: string, browser: Browser) =>
  chromium.launchPersistentContext(profile, {
    ...browser,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    // Under LANG=C the headless shell reports its language as en-US@posix, which Intl then refuses.
    locale: "en-US",
  });

/**
 * The preferred Chromium when it is there and starts, else the npm-shipped one. Never a skip: when neither
 * starts, the test fails with both reasons.
 */
async function launchChromium(profile: string): Promise<{ context: BrowserContext; browser: string }> {
  const failures: string[] = [];
  const executable = await access(PREFERRED_CHROMIUM, constants.X_OK).then(
    () => true,
    () => false,
  );
  if (executable) {
    try {
      return {
        context: await launch(profile, { executablePath: PREFERRED_CHROMIUM }),
        browser: PREFERRED_CHROMIUM,
      };
    } catch (error) {
      failures.push(`${PREFERRED_CHROMIUM} did not start: ${error}`);
    }
  } else {
    failures.push(`no executable Chromium at ${PREFERRED_CHROMIUM}`);
  }
  try {
    const shipped = await npmChromium();
    return {
      context: await launch(profile, shipped),
      browser: `${shipped.executablePath} (@sparticuz/chromium)`,
    };
  } catch (error) {
    failures.push(`the Chromium shipped in the @sparticuz/chromium npm package did not start: ${error}`);
  }
  throw new Error(
    `no Chromium could be started, so the HTML report cannot be checked:\n  ${failures.join("\n  ")}\nRun npm install (it brings @sparticuz/chromium), install Debian's chromium (.ci/install-chromium), or name a Chromium in X402_CHROMIUM.`,
  );
}

const HOSTILE_NAME = "per-request</script><b>bold</b>";
// Parsed as markup, this would be an element that fetches: the request check below would see it.
const HOSTILE_CODE = '<img src="http://127.0.0.1:9/leak.png">';

// The probes run in the page, but the test compiles against Node's lib: the little DOM they touch is declared here.
declare const document: { body: { dataset: Record<string, string | undefined> } };
declare const window: { reportCharts: Record<string, { data: (number | null)[][] } | undefined> };
type Canvas = {
  width: number;
  height: number;
  closest(selector: string): { id: string } | null;
  getContext(
    kind: "2d",
  ): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
};

/** A 30-second run of 50 agents with a latency spike, a handful of errors and one failing threshold. */
function sampleReport(): RunReport {
  const errorSeconds: Record<number, number> = { 4: 3, 11: 5, 19: 6, 26: 2 };
  const timeline: TimelinePoint[] = Array.from({ length: 30 }, (_, second) => {
    const requests = 170 + Math.round(30 * Math.sin(second / 3));
    const errors = errorSeconds[second] ?? 0;
    const spike = second >= 19 && second <= 21 ? 90 : 0;
    return {
      second,
      requests,
      paid: requests - errors,
      errors,
      p50: Math.round((11 + 1.5 * Math.sin(second / 4)) * 1000) / 1000,
      p99: Math.round((34 + 6 * Math.cos(second / 5) + spike) * 1000) / 1000,
    };
  });
  const requests = timeline.reduce((n, t) => n + t.requests, 0);
  const paid = timeline.reduce((n, t) => n + t.paid, 0);
  // Quarter-octave buckets of microseconds, bounds in ms: the shape RunMetrics.distribution() produces.
  const distribution = Array.from({ length: 26 }, (_, k) => {
    const i = 46 + k;
    return {
      le: Math.round(2 ** ((i + 1) / 4)) / 1000,
      count: Math.round(900 * Math.exp(-((i - 54) ** 2) / 10)) + (i > 62 ? 3 : 0),
    };
  });
  const summary = (p50: number, count = requests) => ({
    count,
    p50,
    p90: p50 * 1.6,
    p99: p50 * 3.1,
    p999: p50 * 9,
    max: p50 * 14,
    mean: p50 * 1.2,
  });
  return {
    scenario: HOSTILE_NAME,
    description: "50 agents pay per request for GET /weather, closed model, 30 s.",
    config: {
      agents: 50,
      load: { kind: "closed", agents: 50, durationMs: 30_000 },
      devnet: { profile: "instant" },
      routes: { "GET /weather": { price: "$0.001" } },
      note: "</script><script>alert(1)</script>",
    },
    seed: 402,
    runId: "6f1c2a0e-5b7d-4e8a-9c3f-1d2e3f4a5b6c",
    startedAt: "2025-06-01T12:00:00.000Z",
    durationMs: 30_412,
    interrupted: false,
    requests,
    outcomes: { paid, payment_failed: 9, refused_by_policy: 6, error: 1 },
    latency: {
      challenge: summary(1.9),
      sign: summary(0.071),
      paid: summary(8.4, paid),
      verify: summary(0.42, paid),
      settle: summary(6.1, paid),
      e2e: summary(11.2),
    },
    latencyByOutcome: { paid: summary(11.0, paid), payment_failed: summary(3.2, 9) },
    throughput: { requests: 167.6, paid: 167.1, timeline },
    distribution,
    steadyState: steadyStateFixture(),
    errors: {
      invalid_exact_evm_payload_authorization_valid_before: 9,
      "policy:maxPerRequest": 6,
      [HOSTILE_CODE]: 1,
    },
    warnings: [],
    chain: {
      startBlock: 12,
      endBlock: 1_042,
      settlements: paid,
      settlementTransactions: 1_030,
      gasUsed: "287391042",
    },
    thresholds: [
      { expr: "e2e.p99 < 50ms", actual: 34.72, ok: true },
      { expr: "errors.rate < 0.001", actual: 16 / requests, ok: false },
      { expr: "throughput.paid > 100/s", actual: 167.1, ok: true },
    ],
    invariants: [
      {
        name: "money in equals money out",
        ok: true,
        detail: `${paid} payments × $0.001 moved from payers to payees`,
      },
      { name: "no authorization settled twice", ok: true, detail: `${paid} distinct nonces` },
      { name: "every 200 matches one settlement", ok: true, detail: `${paid} of ${paid}` },
      { name: "no agent exceeded its policy", ok: true, detail: "6 refusals, 0 overspends" },
    ],
    cases: [{ name: "expired authorization", expected: "402", observed: "402", ok: true }],
    ok: false,
  };
}

const threshold = (expr: string, actual: number | null, ok: boolean) => ({ expr, actual, ok });

/** One step of a search judged by `e2e.p99 < 50ms` and `errors.rate < 0.01`. */
function capacityStep(rate: number, achieved: number, p50: number | null, p99: number | null): CapacityStep {
  const held = p99 !== null && p99 < 50;
  return {
    rate,
    achieved,
    paid: achieved,
    requests: Math.round(achieved * 5),
    errors: 0,
    durationMs: 5_012,
    p50,
    p99,
    ok: held,
    failed: held ? [] : ["e2e.p99 < 50ms"],
    thresholds: [threshold("e2e.p99 < 50ms", p99, held), threshold("errors.rate < 0.01", 0, true)],
    brokenInvariants: [],
  };
}

/** Three steps that held, then one that failed a threshold and an invariant. */
function sampleCapacity(): CapacityResult {
  const failed = capacityStep(68, 61.3, 18.5, 73.2);
  failed.failed.push("every 200 matches one settlement");
  failed.brokenInvariants = [{ name: "every 200 matches one settlement", ok: false, detail: HOSTILE_CODE }];
  return {
    scenario: HOSTILE_NAME,
    description: "50 agents pay per request for GET /weather, open model at rising rates.",
    startedAt: "2025-06-01T12:00:00.000Z",
    settings: { startRate: 20, factor: 1.5, stepDurationMs: 5_000, maxSteps: 12 },
    highestRate: 45,
    stoppedBy: "failure",
    steps: [
      capacityStep(20, 19.8, 9.1, 21.4),
      capacityStep(30, 29.7, 9.8, 27.9),
      capacityStep(45, 44.6, 11.2, 41),
      failed,
    ],
  };
}

describe("HTML report in headless Chromium", () => {
  let dir: string;
  let context: BrowserContext;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "x402-report-html-"));
    const launched = await launchChromium(join(dir, "profile"));
    context = launched.context;
    // Which browser drew the pages is the first thing to know when a chart check fails on one machine only.
    console.info(
      `report-html: Chromium ${launched.context.browser()?.version() ?? ""} from ${launched.browser}`,
    );
  });

  afterAll(async () => {
    await context?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Opens a rendered page and waits for its charts, recording every request and every error the page makes. */
  async function open(html: string, name: string, inContext = context) {
    const file = join(dir, `${name}.html`);
    await writeFile(file, html);
    const page = await inContext.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on("request", (request) => requests.push(request.url()));
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    // A script error stops the charts for good: report it rather than wait out the timeout.
    const crashed = new Promise<never>((_, reject) => page.once("pageerror", reject));
    crashed.catch(() => {});
    const url = pathToFileURL(file).href;
    await page.goto(url);
    await Promise.race([
      page.waitForFunction(() => document.body.dataset.chartsReady === "true", null, { timeout: 15_000 }),
      crashed,
    ]);
    return { page, url, requests, problems };
  }

  /** What a chart plotted: its x values, then each series'. */
  const plotted = (page: Page, id: string) =>
    page.evaluate((chartId) => window.reportCharts[chartId]?.data ?? null, id);

  const canvasInk = (page: Page) =>
    page.locator(".uplot canvas").evaluateAll((canvases: Canvas[]) =>
      canvases.map((canvas) => {
        const { data } = canvas.getContext("2d")?.getImageData(0, 0, canvas.width, canvas.height) ?? {
          data: [],
        };
        let inked = 0;
        let coloured = 0;
        for (let i = 0; i < data.length; i += 4) {
          const [r = 0, g = 0, b = 0, a = 0] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
          if (a === 0) continue;
          inked += 1;
          // Axes, grid and labels are grey and the area fills faint: only opaque colour is a drawn series.
          if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 80) coloured += 1;
        }
        return {
          chart: canvas.closest(".chart")?.id,
          width: canvas.width,
          height: canvas.height,
          inked,
          coloured,
        };
      }),
    );

  it("draws the three charts, shows the verdict and every check, and never touches the network", async () => {
    const report = sampleReport();
    const { page, url, requests, problems } = await open(renderHtmlReport(report), "sample");

    expect(await page.evaluate(() => document.body.dataset.charts)).toBe("3");
    const canvases = await canvasInk(page);
    expect(canvases.map((c) => c.chart)).toEqual(["chart-latency", "chart-throughput", "chart-distribution"]);
    for (const canvas of canvases) {
      expect(canvas.width, canvas.chart).toBeGreaterThan(300);
      expect(canvas.height, canvas.chart).toBeGreaterThan(100);
      expect(canvas.coloured, `${canvas.chart} has no series drawn`).toBeGreaterThan(300);
    }

    expect(await page.locator("#verdict").textContent()).toBe("FAIL");
    const thresholds = page.locator("#thresholds tbody tr");
    expect(await thresholds.count()).toBe(report.thresholds.length);
    expect(await thresholds.nth(1).textContent()).toContain("errors.rate < 0.001");
    expect(await page.locator("#thresholds tbody tr.failed").count()).toBe(1);
    expect(await page.locator("#thresholds .mark.bad").count()).toBe(1);
    expect(await page.locator("#invariants tbody tr").count()).toBe(report.invariants.length);
    // Six phases, then end to end per outcome.
    expect(await page.locator("#latency tbody tr").count()).toBe(
      6 + Object.keys(report.latencyByOutcome).length,
    );
    expect(await page.locator("#latency tbody tr").last().textContent()).toContain(
      "end to end, payment_failed",
    );

    // Hostile text arrives as text: no element parsed from it, and the embedded data survives whole.
    expect(await page.locator("#scenario").textContent()).toBe(HOSTILE_NAME);
    expect(await page.title()).toContain(HOSTILE_NAME);
    expect(await page.locator("#errors code", { hasText: "<img" }).textContent()).toBe(HOSTILE_CODE);
    expect(await page.locator("b, img").count()).toBe(0);
    expect(JSON.parse((await page.locator("#report-data").textContent()) ?? "")).toEqual(report);

    expect(requests).toEqual([url]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("still reads when a run measured nothing", async () => {
    const report: RunReport = {
      ...sampleReport(),
      scenario: "empty",
      requests: 0,
      outcomes: {},
      latency: {},
      latencyByOutcome: {},
      throughput: { requests: 0, paid: 0, timeline: [] },
      distribution: [],
      errors: {},
      thresholds: [{ expr: "e2e.p99 < 50ms", actual: null, ok: false }],
      cases: undefined,
    };
    const { page, problems } = await open(renderHtmlReport(report), "empty");

    expect(await page.evaluate(() => document.body.dataset.charts)).toBe("0");
    expect(await page.locator(".chart.no-data").count()).toBe(3);
    expect(await page.locator("#errors").textContent()).toBe("No errors.");
    expect(await page.locator("#thresholds tbody td.num").textContent()).toBe("—");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("says when a run was interrupted, a post-run step failed, or a warning was raised", async () => {
    const report: RunReport = {
      ...sampleReport(),
      interrupted: true,
      steadyState: {
        ...steadyStateFixture(),
        windows: [
          {
            fromSecond: 0,
            seconds: 5,
            requests: 500,
            paid: 500,
            errors: 0,
            throughput: 100,
            p50: 4,
            p99: 10,
            block: 60,
            harnessRssMb: 120,
            anvilRssMb: 80,
          },
          {
            fromSecond: 5,
            seconds: 5,
            requests: 450,
            paid: 450,
            errors: 0,
            throughput: 90,
            p50: 5,
            p99: 15,
            block: 120,
            harnessRssMb: 130,
            anvilRssMb: 95,
          },
        ],
        drift: { e2e: { p50: 0.25, p99: 0.5 }, throughput: 0.1 },
      },
      warnings: [
        "GET http://127.0.0.1:4021/weather was paid for, then served 3 times without asking for payment",
      ],
      error: { step: "read settlements", message: "the node stopped answering" },
      ok: false,
    };
    const { page, problems } = await open(renderHtmlReport(report), "interrupted");
    expect(await page.locator("#verdict").textContent()).toBe("INTERRUPTED");
    expect(await page.locator(".verdict .why").textContent()).toContain(
      "the run was interrupted before its end",
    );
    expect(await page.locator("#steady-state tbody tr").count()).toBe(report.steadyState.windows.length);
    expect(await page.locator("#drift").textContent()).toContain("p99 +50.0%");
    const notices = await page.locator("#notices li").allTextContents();
    expect(notices).toEqual([
      expect.stringContaining("Interrupted"),
      'The step "read settlements" failed: the node stopped answering',
      expect.stringContaining("was paid for, then served 3 times"),
    ]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("plots a partial last second as a rate over the part the run covered, and leaves a sliver out", async () => {
    const report = sampleReport();
    const full = report.throughput.timeline;
    // 29.7 s: the last second, 29, covers 0.7 s.
    const partial = { ...report, durationMs: 29_700 };
    partial.throughput.timeline = full.map((t) =>
      t.second === 29 ? { ...t, requests: 119, paid: 112, errors: 7 } : t,
    );
    const { page } = await open(renderHtmlReport(partial), "partial-second");
    const [seconds = [], requests = [], paid = [], errors = []] =
      (await plotted(page, "chart-throughput")) ?? [];
    expect(seconds).toEqual(full.map((t) => t.second));
    expect(requests.slice(0, 29)).toEqual(full.slice(0, 29).map((t) => t.requests));
    expect(requests.at(-1)).toBeCloseTo(119 / 0.7, 6);
    expect(paid.at(-1)).toBeCloseTo(112 / 0.7, 6);
    expect(errors.at(-1)).toBeCloseTo(7 / 0.7, 6);
    // Latency is no count: every second keeps its percentiles.
    expect((await plotted(page, "chart-latency"))?.[0]).toEqual(full.map((t) => t.second));
    await page.close();

    // 30.412 s: second 30 covers 0.412 s, and its few requests would read as a spike.
    const sliver = sampleReport();
    sliver.throughput.timeline.push({ second: 30, requests: 9, paid: 9, errors: 0, p50: 12, p99: 30 });
    const { page: sliverPage } = await open(renderHtmlReport(sliver), "sliver");
    const [sliverSeconds = [], sliverRequests = []] = (await plotted(sliverPage, "chart-throughput")) ?? [];
    expect(sliverSeconds).toEqual(full.map((t) => t.second));
    expect(sliverRequests).toEqual(full.map((t) => t.requests));
    await sliverPage.close();
  });

  it("shows the whole capacity search: every step and its verdict, the highest rate that held, both curves", async () => {
    const result = sampleCapacity();
    const { page, url, requests, problems } = await open(renderCapacityHtml(result), "capacity");

    expect(await page.evaluate(() => document.body.dataset.charts)).toBe("2");
    const canvases = await canvasInk(page);
    expect(canvases.map((c) => c.chart)).toEqual(["chart-capacity-latency", "chart-capacity-throughput"]);
    for (const canvas of canvases) {
      expect(canvas.coloured, `${canvas.chart} has no series drawn`).toBeGreaterThan(300);
    }
    const rates = [20, 30, 45, 68];
    expect(await plotted(page, "chart-capacity-latency")).toEqual([
      rates,
      [9.1, 9.8, 11.2, 18.5],
      [21.4, 27.9, 41, 73.2],
    ]);
    // Achieved and paid against the offered rate itself, the line a stack that kept up would follow.
    expect(await plotted(page, "chart-capacity-throughput")).toEqual([
      rates,
      [19.8, 29.7, 44.6, 61.3],
      [19.8, 29.7, 44.6, 61.3],
      rates,
    ]);

    expect(await page.locator("#verdict").textContent()).toBe("45/s");
    expect(await page.locator("#headline").textContent()).toBe("highest rate that held 45/s");
    expect(await page.locator("#stopped").textContent()).toBe("stopped at 68/s, the first rate that failed");
    const steps = page.locator("#steps tbody tr");
    expect(await steps.count()).toBe(4);
    expect(await steps.nth(2).textContent()).toMatch(/45\/s\s*44\.6\/s.*11\.2 ms\s*41\.0 ms.*held/);
    expect(await page.locator("#steps tbody tr.failed").count()).toBe(1);
    const failed = await steps.nth(3).textContent();
    expect(failed).toContain("failed: e2e.p99 < 50ms (actual 73.2)");
    expect(failed).toContain(`every 200 matches one settlement: ${HOSTILE_CODE}`);
    expect(await page.locator("#steps ~ .note").textContent()).toContain(
      "e2e.p99 < 50ms, errors.rate < 0.01",
    );

    expect(await page.locator("#scenario").textContent()).toBe(HOSTILE_NAME);
    expect(await page.locator("b, img").count()).toBe(0);
    expect(JSON.parse((await page.locator("#capacity-data").textContent()) ?? "")).toEqual(result);
    expect(requests).toEqual([url]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("says in words that no rate held, never none/s", async () => {
    // The stack served nothing at the first rate: no latency at all, no achieved rate on a log axis.
    const nothing = capacityStep(20, 0, null, null);
    const result: CapacityResult = { ...sampleCapacity(), highestRate: null, steps: [nothing] };
    const { page, problems } = await open(renderCapacityHtml(result), "capacity-none");

    expect(await page.locator("body").getAttribute("class")).toBe("fail");
    expect(await page.locator("#verdict").textContent()).toBe("NO RATE HELD");
    expect(await page.locator("#headline").textContent()).toBe("no rate held; the lowest tried was 20/s");
    expect(await page.locator("main").textContent()).not.toMatch(/none\s*\/s/i);
    expect(await page.locator("#steps tbody tr").textContent()).toContain(
      "failed: e2e.p99 < 50ms (not measured)",
    );
    expect(await plotted(page, "chart-capacity-latency")).toEqual([[20], [null], [null]]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("draws in the Chromium the npm package ships, the one a machine without Debian's uses", async () => {
    const shipped = await launch(join(dir, "profile-npm"), await npmChromium());
    try {
      const { page, requests, url, problems } = await open(renderHtmlReport(sampleReport()), "npm", shipped);
      expect(await page.evaluate(() => document.body.dataset.charts)).toBe("3");
      for (const canvas of await canvasInk(page)) {
        expect(canvas.coloured, `${canvas.chart} has no series drawn`).toBeGreaterThan(300);
      }
      expect(requests).toEqual([url]);
      expect(problems).toEqual([]);
    } finally {
      await shipped.close();
    }
  });
});
