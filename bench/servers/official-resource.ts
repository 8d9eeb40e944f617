import type { Address } from "viem";
import {
  startOfficialBatchServer,
  startOfficialPermit2Server,
  startOfficialServer,
} from "../../test/support/official-server.ts";
import { serverMain } from "../lib/child.ts";

/**
 * `paths`: the Permit2 paths' routes (`/exact/evm/permit2`, `/upto/evm/permit2`) instead of `/weather`;
 * `batch`: `/batch-settlement/evm/eip3009` instead (its facilitator must advertise a receiver authorizer).
 */
export type OfficialResourceServerConfig = {
  facilitatorUrl: string;
  payTo: Address;
  paths?: boolean;
  batch?: boolean;
};

let stop: () => Promise<void> = async () => {};
const config = serverMain<OfficialResourceServerConfig>(() => stop());
const start = config.batch
  ? startOfficialBatchServer
  : config.paths
    ? startOfficialPermit2Server
    : startOfficialServer;
const server = await start(config.facilitatorUrl, config.payTo);
stop = server.stop;
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
