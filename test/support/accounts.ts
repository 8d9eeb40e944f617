/** A devnet's funded account by index, or a clear error when the test asked for one it did not fund. */
export function devnetAccount<Account>(devnet: { accounts: readonly Account[] }, index: number): Account {
  const found = devnet.accounts[index];
  if (!found) throw new Error(`no account ${index}: the devnet funded ${devnet.accounts.length}`);
  return found;
}
