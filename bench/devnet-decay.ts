/**
 * How anvil's speed changes as the chain grows, under each hardfork the devnet runs: at every checkpoint
 * (every `--step` blocks up to `--blocks`), the median time to mine one empty block, ETH transfers per
 * second under automine (a block each, as under `instant`), and eth_getBalance calls per second. The
 * chain is raised between checkpoints with anvil_mine. Not part of `npm run bench`: it takes minutes.
 *
 *   npx tsx bench/devnet-decay.ts [--blocks 10000] [--step 2500] [--hardforks cancun,prague,osaka]
 */
import { parseArgs } from "node:util";
import { type Devnet, HARDFORKS, type Hardfork, isHardfork, startDevnet } from "../src/chain/index.ts";
import { blockMs } from "./lib/devnet.ts";

const { values } = parseArgs({
  options: {
    blocks: { type: "string", default: "10000" },
    step: { type: "string", default: "2500" },
    hardforks: { type: "string", default: HARDFORKS.join(",") },
  },
});
const blocks = Number(values.blocks);
const step = Number(values.step);
const hardforks = values.hardforks.split(",").filter((name): name is Hardfork => {
  if (!isHardfork(name)) throw new Error(`unknown hardfork ${name}; one of ${HARDFORKS.join(", ")}`);
  return true;
});

/**
 * Transfers from `senders` impersonated accounts, one in flight each: under automine each is a block. (One
 * sender with many in flight stalls anvil 1.7.1's automine within a thousand transfers.)
 */
async function transfersPerSecond(devnet: Devnet, count = 1000): Promise<number> {
  const [to, ...senders] = devnet.accounts.map((a) => a.address);
  if (!to || senders.length === 0) throw new Error("needs a receiver and senders");
  const perSender = Math.ceil(count / senders.length);
  const began = performance.now();
  await Promise.all(
    senders.map(async (from) => {
      let nonce = await devnet.client.getTransactionCount({ address: from, blockTag: "pending" });
      for (let i = 0; i < perSender; i++) {
        const hash = await devnet.client.sendTransaction({
          account: from,
          to,
          value: 1n,
          nonce: nonce++,
          chain: null,
        });
        await devnet.client.waitForTransactionReceipt({ hash, pollingInterval: 5 });
      }
    }),
  );
  return (perSender * senders.length) / ((performance.now() - began) / 1000);
}

async function readsPerSecond(devnet: Devnet, count = 2000): Promise<number> {
  const address = devnet.accounts[0]?.address;
  if (!address) throw new Error("needs an account");
  const began = performance.now();
  for (let i = 0; i < count; i++) {
    await devnet.client.getBalance({ address });
  }
  return count / ((performance.now() - began) / 1000);
}

for (const hardfork of hardforks) {
  const devnet = await startDevnet({ accounts: 21, profile: "instant", hardfork });
  try {
    for (const { address } of devnet.accounts) await devnet.client.impersonateAccount({ address });
    const started = performance.now();
    for (let target = 0; target <= blocks; target += step) {
      const height = Number(await devnet.client.getBlockNumber({ cacheTime: 0 }));
      // In pieces: under Prague a few thousand blocks in one call outlast the client's 10 s timeout.
      for (let at = height; at < target; at += 250) {
        await devnet.client.mine({ blocks: Math.min(250, target - at) });
      }
      const at = Number(await devnet.client.getBlockNumber({ cacheTime: 0 }));
      const row = [
        hardfork.padEnd(7),
        `height ${String(at).padStart(6)}`,
        `empty block ${(await blockMs(devnet, 100)).toFixed(2).padStart(6)} ms`,
        `transfers ${(await transfersPerSecond(devnet)).toFixed(0).padStart(5)}/s`,
        `eth_getBalance ${(await readsPerSecond(devnet)).toFixed(0).padStart(5)}/s`,
        `(${((performance.now() - started) / 1000).toFixed(0)} s in)`,
      ].join("   ");
      process.stdout.write(`${row}\n`);
    }
  } finally {
    await devnet.stop();
  }
}
