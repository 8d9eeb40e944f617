import type { Address } from "viem";
import { startOfficialPermit2Server, startOfficialServer } from "../../test/support/official-server.ts";
import { serverMain } from "../lib/child.ts";

/** `paths`: the Permit2 paths' routes (`/exact/evm/permit2`, `/upto/evm/permit2`) instead of `/weather`. */
export type OfficialResourceServerConfig = { facilitatorUrl: string; payTo: Address; paths?: boolean };

let stop: () => Promise<void> = async () => {};
const config = serverMain<OfficialResourceServerConfig>(() => stop());
const server = await (config.paths ? startOfficialPermit2Server : startOfficialServer)(
  config.facilitatorUrl,
  config.payTo,
);
stop = server.stop;
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
