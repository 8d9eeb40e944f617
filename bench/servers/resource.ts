import type { Address } from "viem";
import { startResourceServer } from "../../src/server/index.ts";
import { defaultRoutes } from "../../src/stack.ts";
import { serverMain } from "../lib/child.ts";

export type ResourceServerConfig = { facilitatorUrl: string; payTo: Address };

let stop: () => Promise<void> = async () => {};
const config = serverMain<ResourceServerConfig>(() => stop());
const server = await startResourceServer({
  facilitatorUrl: config.facilitatorUrl,
  routes: defaultRoutes(config.payTo),
});
stop = server.stop;
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
