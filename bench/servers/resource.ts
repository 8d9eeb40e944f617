import type { Address } from "viem";
import { startResourceServer } from "../../src/server/index.ts";
import { serverMain } from "../lib/child.ts";

export type ResourceServerConfig = { facilitatorUrl: string; payTo: Address; price?: string };

let stop: () => Promise<void> = async () => {};
const config = serverMain<ResourceServerConfig>(() => stop());
const server = await startResourceServer({
  facilitatorUrl: config.facilitatorUrl,
  routes: {
    "GET /weather": {
      price: config.price ?? "$0.001",
      payTo: config.payTo,
      description: "Current weather",
      mimeType: "application/json",
    },
  },
});
stop = server.stop;
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
