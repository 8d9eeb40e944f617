import type { Address } from "viem";
import { startOfficialServer } from "../../test/support/official-server.ts";
import { serverMain } from "../lib/child.ts";

export type OfficialResourceServerConfig = { facilitatorUrl: string; payTo: Address };

let stop: () => Promise<void> = async () => {};
const config = serverMain<OfficialResourceServerConfig>(() => stop());
const server = await startOfficialServer(config.facilitatorUrl, config.payTo);
stop = server.stop;
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
