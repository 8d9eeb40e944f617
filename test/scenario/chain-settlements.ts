import type { Address, Hash } from "viem";
import {
  BASE_CHAIN_ID,
  type Devnet,
  type DevnetAccount,
  MULTICALL3_ADDRESS,
  USDC_ADDRESS,
  USDC_NAME,
  USDC_VERSION,
} from "../../src/chain/index.ts";
import { aggregate3CallData, type Call3, transferCallData } from "../../src/facilitator/exact-evm/abi.ts";
import { randomNonce, signTransferAuthorization } from "../../src/protocol/index.ts";
import type { PaidRecord } from "../../src/scenario/index.ts";

/**
 * Real settlements, made fast: EIP-3009 authorizations signed natively and settled by the token, hundreds
 * to a transaction through Multicall3's aggregate3 (as the facilitator batches), with no server in between.
 */

export type Payment = { payer: DevnetAccount; payTo: Address; amount: bigint };

const DOMAIN = {
  name: USDC_NAME,
  version: USDC_VERSION,
  chainId: BASE_CHAIN_ID,
  verifyingContract: USDC_ADDRESS,
};
/** Sends the settlement transactions without a key (anvil's unsigned transactions), as a relayer would. */
export const RELAYER: Address = "0x000000000000000000000000000000000000feed";
// A settlement takes ~38k gas in a batch, more for a first transfer to a payee; the cap of one transaction
// (EIP-7825: 2^24 gas) fits 350 at this much each.
const GAS_PER_SETTLEMENT = 45_000n;
const GAS_PER_TRANSACTION = 60_000n;
export const MAX_PER_TRANSACTION = 350;

function signed({ payer, payTo, amount }: Payment): Call3 {
  const authorization = {
    from: payer.address,
    to: payTo,
    value: amount.toString(),
    validAfter: "0",
    validBefore: "99999999999",
    nonce: randomNonce(),
  };
  const signature = signTransferAuthorization(payer.privateKey, DOMAIN, authorization);
  return {
    target: USDC_ADDRESS,
    allowFailure: false,
    callData: transferCallData({ authorization, signature }),
  };
}

const relayerNonces = new WeakMap<Devnet, number>();

type Signed = { calls: Call3[]; payments: readonly Payment[] };

const sign = (payments: readonly Payment[]): Signed => ({ calls: payments.map(signed), payments });

async function send(
  devnet: Devnet,
  { calls, payments }: Signed,
): Promise<{ hash: Hash; paid: PaidRecord[] }> {
  const [first] = calls;
  if (!first || calls.length > MAX_PER_TRANSACTION) throw new RangeError(`${calls.length} settlements`);
  let nonce = relayerNonces.get(devnet);
  if (nonce === undefined) {
    await devnet.client.setBalance({ address: RELAYER, value: 10n ** 24n });
    nonce = await devnet.client.getTransactionCount({ address: RELAYER, blockTag: "pending" });
  }
  // Nonces are counted here, so a transaction can go before the last one is mined.
  relayerNonces.set(devnet, nonce + 1);
  const hash = await devnet.client.sendUnsignedTransaction({
    from: RELAYER,
    ...(calls.length === 1
      ? { to: USDC_ADDRESS, data: first.callData }
      : { to: MULTICALL3_ADDRESS, data: aggregate3CallData(calls) }),
    gas: GAS_PER_TRANSACTION + GAS_PER_SETTLEMENT * BigInt(calls.length),
    nonce,
  });
  return {
    hash,
    paid: payments.map((p) => ({
      payer: p.payer.address,
      payTo: p.payTo,
      amount: p.amount,
      transaction: hash,
    })),
  };
}

/**
 * Sends one transaction settling `payments` (alone: straight to the token) and returns its hash and the
 * paid record each payment stands for; any one failing reverts them all. It is mined as the devnet mines:
 * at once under automine, or with the next block mined by hand.
 */
export const sendSettlements = (devnet: Devnet, payments: readonly Payment[]) => send(devnet, sign(payments));

/**
 * Settles `count` payments of `payers` to `payees` in turn, `perTransaction` to a transaction, under
 * automine; each batch is signed while anvil executes the one before. Returns the paid records once the
 * last transaction is mined.
 */
export async function settleMany(
  devnet: Devnet,
  {
    count,
    payers,
    payees,
    perTransaction = MAX_PER_TRANSACTION,
    amount = 1_000n,
  }: {
    count: number;
    payers: readonly DevnetAccount[];
    payees: readonly Address[];
    perTransaction?: number;
    amount?: bigint;
  },
): Promise<PaidRecord[]> {
  const paid: PaidRecord[] = [];
  let sent: Promise<{ hash: Hash; paid: PaidRecord[] }> | undefined;
  for (let start = 0; start < count; start += perTransaction) {
    const payments: Payment[] = [];
    for (let i = start; i < Math.min(count, start + perTransaction); i++) {
      payments.push({
        payer: payers[i % payers.length] as DevnetAccount,
        payTo: payees[i % payees.length] as Address,
        amount,
      });
    }
    const batch = sign(payments);
    if (sent) paid.push(...(await sent).paid);
    sent = send(devnet, batch);
  }
  if (sent) {
    const last = await sent;
    paid.push(...last.paid);
    const receipt = await devnet.client.waitForTransactionReceipt({ hash: last.hash });
    if (receipt.status !== "success") throw new Error(`settlement transaction ${last.hash} reverted`);
  }
  return paid;
}
