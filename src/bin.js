#!/usr/bin/env node
// The CLI runs from TypeScript source through tsx, so an install needs no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./cli.ts");
process.exit(await main(process.argv.slice(2)));
