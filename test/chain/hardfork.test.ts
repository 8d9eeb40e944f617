import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectDevnet,
  type Devnet,
  DevnetOptionError,
  type Hardfork,
  PROFILES,
  startDevnet,
} from "../../src/chain/index.ts";

describe("the rules each profile runs", () => {
  const started: Devnet[] = [];
  const start = async (options: Parameters<typeof startDevnet>[0]) => {
    const devnet = await startDevnet({ accounts: 1, ...options });
    started.push(devnet);
    return devnet;
  };
  afterAll(async () => {
    await Promise.all(started.map((d) => d.stop()));
  });

  it.each([
    ["instant", "cancun"],
    ["flashblocks", "cancun"],
    ["base", "osaka"],
  ] as const)("%s runs %s, as anvil itself reports", async (profile, hardfork) => {
    const devnet = await start({ profile });
    expect(PROFILES[profile].hardfork).toBe(hardfork);
    expect(devnet.hardfork).toBe(hardfork);
    expect(devnet.profile).toBe(profile);
    expect(devnet.blockTime).toBe(PROFILES[profile].blockTime);
  });

  it("takes a hardfork over the profile's, and refuses one it does not run", async () => {
    expect((await start({ hardfork: "prague" })).hardfork).toBe("prague");
    await expect(startDevnet({ hardfork: "shanghai" as Hardfork })).rejects.toThrow(
      /hardfork must be one of cancun, prague, osaka, got shanghai/,
    );
    await expect(startDevnet({ hardfork: "shanghai" as Hardfork })).rejects.toBeInstanceOf(DevnetOptionError);
  });

  it("a fork follows the forked chain's rules unless told otherwise; an attached chain says its own", async () => {
    const upstream = await start({ hardfork: "prague" });
    // anvil picks a fork's rules from its chain id: chain 8453 is Base, so OP's latest, not the profile's.
    const fork = await start({ forkUrl: upstream.rpcUrl });
    expect(fork.hardfork).not.toBe(PROFILES.instant.hardfork);
    expect(fork.hardfork).toMatch(/^[a-z0-9]+$/);
    expect((await start({ forkUrl: upstream.rpcUrl, hardfork: "cancun" })).hardfork).toBe("cancun");
    const attached = await connectDevnet({ rpcUrl: upstream.rpcUrl, accounts: 1 });
    expect(attached.hardfork).toBe("prague");
    expect(attached.profile).toBeUndefined();
  });
});

/**
 * anvil 1.7.1 under Prague rules pays, in every block, for the EIP-2935 history contract's storage, which
 * grows with the chain; under `instant` every transaction is a block, so a run slows as it goes. Both
 * chains are sampled side by side, 20 blocks each in turn (one HTTP round trip per 20 blocks, so the time
 * is anvil's, not the loopback's), so a busy machine slows both alike, and medians leave out the odd stall.
 * Measured at height 2,000 on a loaded 2-core machine: 20 blocks take the default 14–44 ms, Prague 91–139.
 * Only the side-by-side ratio is asserted: how much either chain slows from fresh depends on the machine's
 * load while the fresh figure (a few ms) was taken, and bench/devnet-decay.ts holds those figures.
 */
describe("instant's default rules hold steady as the chain grows", () => {
  const HEIGHT = 2000n;
  const SAMPLES = 15;
  const BATCH = 20;
  let steady: Devnet;
  let prague: Devnet;
  beforeAll(async () => {
    [steady, prague] = await Promise.all([
      startDevnet({ accounts: 1, profile: "instant" }),
      startDevnet({ accounts: 1, profile: "instant", hardfork: "prague" }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([steady?.stop(), prague?.stop()]);
  });

  /** Median milliseconds to mine BATCH empty blocks on each chain. */
  async function blockCost(): Promise<[steady: number, prague: number]> {
    const times: [number[], number[]] = [[], []];
    for (let i = 0; i < SAMPLES; i++) {
      for (const [index, devnet] of [steady, prague].entries()) {
        const began = performance.now();
        await devnet.client.mine({ blocks: BATCH });
        times[index]?.push(performance.now() - began);
      }
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
    return [median(times[0]), median(times[1])];
  }

  it("at height 2,000, a block costs Prague rules several times what it costs the default, and Prague slowed more", async () => {
    expect(steady.hardfork).toBe("cancun");
    const [steadyFresh, pragueFresh] = await blockCost();
    for (const devnet of [steady, prague]) {
      const height = await devnet.client.getBlockNumber({ cacheTime: 0 });
      for (let mined = height; mined < HEIGHT; mined += 500n) await devnet.client.mine({ blocks: 500 });
    }
    const [steadyGrown, pragueGrown] = await blockCost();
    const figures = { steadyFresh, steadyGrown, pragueFresh, pragueGrown };
    // Measured: the default 3.2–4.2 → 14–44 ms, Prague 6.5–8.7 → 91–139 ms: Prague 3.1–7× the default when grown.
    expect(pragueGrown / steadyGrown, JSON.stringify(figures)).toBeGreaterThan(2);
    expect(pragueGrown / pragueFresh, JSON.stringify(figures)).toBeGreaterThan(steadyGrown / steadyFresh);
  }, 60_000);
});
