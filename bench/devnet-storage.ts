/**
 * What a block costs anvil as contract storage grows. Every EIP-3009 settlement leaves a storage slot
 * behind (the token's `authorizationState[payer][nonce]`), and anvil 1.7.1 computes each block's state root
 * over all of the state, so the time to mine even an empty block grows with the settlements a chain has
 * seen, whatever its hardfork or history. Slots are written straight into USDC's storage with
 * `anvil_setStorageAt` (a settlement's slot, without the settlement), then empty blocks are timed.
 * Not part of `npm run bench`: it takes a minute or two.
 *
 *   npx tsx bench/devnet-storage.ts [--slots 50000,100000,200000] [--histories full,pruned]
 */
import { parseArgs } from "node:util";
import { type Hex, numberToHex, pad } from "viem";
import {
  type Devnet,
  HISTORIES,
  type History,
  isHistory,
  startDevnet,
  USDC_ADDRESS,
} from "../src/chain/index.ts";
import { processRssMb } from "../src/scenario/index.ts";
import { blockMs } from "./lib/devnet.ts";

const { values } = parseArgs({
  options: {
    slots: { type: "string", default: "50000,100000,200000" },
    histories: { type: "string", default: HISTORIES.join(",") },
  },
});
const checkpoints = values.slots.split(",").map(Number);
const histories = values.histories.split(",").filter((name): name is History => {
  if (!isHistory(name)) throw new Error(`unknown history ${name}; one of ${HISTORIES.join(", ")}`);
  return true;
});

/** Fills slots `from … to-1` of USDC's storage (far from its own variables) with a nonzero word. */
async function fill(devnet: Devnet, from: number, to: number): Promise<void> {
  const one = pad("0x01");
  for (let start = from; start < to; start += 1000) {
    const end = Math.min(to, start + 1000);
    // The devnet client batches the calls of one turn into one JSON-RPC request.
    await Promise.all(
      Array.from({ length: end - start }, (_, i) =>
        devnet.client.setStorageAt({
          address: USDC_ADDRESS,
          index: pad(numberToHex(2n ** 200n + BigInt(start + i))) as Hex,
          value: one,
        }),
      ),
    );
  }
}

console.log("| history | storage slots | ms per empty block | anvil RSS MB |");
console.log("| :------ | ------------: | -----------------: | -----------: |");
for (const history of histories) {
  // `instant` so that nothing mines but the timed calls; the history is the one under test.
  const devnet = await startDevnet({ accounts: 1, profile: "instant", history });
  try {
    let filled = 0;
    for (const slots of [0, ...checkpoints]) {
      await fill(devnet, filled, slots);
      filled = slots;
      const ms = await blockMs(devnet, 30);
      console.log(
        `| ${history} | ${slots.toLocaleString("en-US")} | ${ms.toFixed(1)} | ${await processRssMb(devnet.pid)} |`,
      );
    }
  } finally {
    await devnet.stop();
  }
}
