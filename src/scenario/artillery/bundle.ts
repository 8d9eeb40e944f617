import { fileURLToPath } from "node:url";

/** The processor's entry point, beside this file (`.ts` in the sources, `.js` in the build). */
const entry = (): string => {
  const here = fileURLToPath(import.meta.url);
  return here.replace(/bundle\.(ts|js)$/, (_, ext: string) => `processor.${ext}`);
};

/**
 * Bundles the processor, the agent and everything they import (viem, undici, noble) into one CommonJS
 * file, the form Artillery loads and ships to cloud workers as is: no install of this package there.
 * `import.meta.url` has no CommonJS equivalent, so the file's own URL stands in for it; the native
 * secp256k1 addon is loaded at run time from NODE_PATH where there is one, else the pure-JS signer runs.
 */
export async function bundleProcessor(outfile: string): Promise<void> {
  // Loaded here, not with the CLI: only an Artillery run needs it.
  const { build } = await import("esbuild");
  await build({
    entryPoints: [entry()],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    // Artillery tells an async step from a callback one by its constructor's name: async stays native.
    target: "node20",
    define: { "import.meta.url": "__x402_import_meta_url" },
    banner: { js: 'const __x402_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    legalComments: "none",
    logLevel: "silent",
  });
}
