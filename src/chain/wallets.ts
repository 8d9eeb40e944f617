import { hmac } from "@noble/hashes/hmac";
import { sha512 } from "@noble/hashes/sha2";
import { mnemonicToSeedSync } from "@scure/bip39";
import { type Address, bytesToHex, type Hex, hexToBigInt, numberToBytes } from "viem";
import { HDKey, privateKeyToAddress } from "viem/accounts";

export type DevnetAccount = { address: Address; privateKey: Hex; index: number };

/**
 * Where each role's wallets sit among one mnemonic's HD indices, far apart so that `--accounts N` never
 * reaches the next range. A stack attached to a running devnet takes ranges of its own: its relayers never
 * race the running facilitator's nonces, and its agents never share a wallet with the ones `up` prints (a
 * run's money invariants hold only if nobody else moves its wallets' USDC meanwhile).
 */
export const HD_RANGES = {
  started: { agents: 0, relayers: 100_000, payees: 200_000 },
  attached: { agents: 300_000, relayers: 150_000, payees: 250_000 },
} as const;

/** The BIP-44 Ethereum account path whose children are anvil's (and Hardhat's, MetaMask's) accounts. */
const ACCOUNT_PATH = "m/44'/60'/0'/0";
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * Derives accounts `offset … offset+count-1` of `m/44'/60'/0'/0/i`, the same keys as viem's
 * `mnemonicToAccount(mnemonic, { addressIndex: i })`.
 *
 * The non-hardened child step is done here rather than through `HDKey.deriveChild`, which also computes
 * each child's public key: one elliptic-curve multiplication per wallet instead of two halves the cost of
 * deriving a swarm of thousands.
 */
export function deriveAccounts(mnemonic: string, count: number, offset = 0): DevnetAccount[] {
  const parent = HDKey.fromMasterSeed(mnemonicToSeedSync(mnemonic)).derive(ACCOUNT_PATH);
  if (!parent.privateKey || !parent.publicKey || !parent.chainCode) throw new Error("HD derivation failed");
  const parentKey = hexToBigInt(bytesToHex(parent.privateKey));
  const data = new Uint8Array(37);
  data.set(parent.publicKey, 0);
  const view = new DataView(data.buffer);

  const accounts: DevnetAccount[] = [];
  for (let index = offset; index < offset + count; index++) {
    view.setUint32(33, index);
    const tweak = hexToBigInt(bytesToHex(hmac(sha512, parent.chainCode, data).subarray(0, 32)));
    const key = (parentKey + tweak) % SECP256K1_N;
    // BIP-32 would skip such an index; the odds are about 2^-127, so say so rather than carry that branch.
    if (tweak >= SECP256K1_N || key === 0n)
      throw new Error(`BIP-32 index ${index} is invalid; use another mnemonic`);
    const privateKey = bytesToHex(numberToBytes(key, { size: 32 }));
    accounts.push({ address: privateKeyToAddress(privateKey), privateKey, index });
  }
  return accounts;
}
