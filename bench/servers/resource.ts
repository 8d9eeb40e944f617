import type { Address } from "viem";
import { startResourceServer } from "../../src/server/index.ts";
import { defaultRoutes, paymentPathHandlers, paymentPathRoutes } from "../../src/stack.ts";
import { serverMain } from "../lib/child.ts";

/** `paths`: every payment path's route, as `x402-devnet up` serves them (its facilitator must take them). */
export type ResourceServerConfig = { facilitatorUrl: string; payTo: Address; paths?: boolean };

let stop: () => Promise<void> = async () => {};
const config = serverMain<ResourceServerConfig>(() => stop());
const server = await startResourceServer({
  facilitatorUrl: config.facilitatorUrl,
  ...(config.paths
    ? { routes: paymentPathRoutes([config.payTo]), handlers: paymentPathHandlers }
    : { routes: defaultRoutes(config.payTo) }),
});
stop = server.stop;
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
