import { spawn } from "node:child_process";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ARTILLERY_VERSION } from "./job.ts";

/** This package's root: three levels above this file, in the sources and in the build alike. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Where Artillery is installed on demand: `X402_ARTILLERY_HOME`, else a cache in this package's node_modules. */
export const artilleryHome = (env: NodeJS.ProcessEnv = process.env) =>
  env.X402_ARTILLERY_HOME ??
  join(PACKAGE_ROOT, "node_modules", ".cache", "x402-devnet", `artillery-${ARTILLERY_VERSION}`);

/** Artillery could not be installed or run: the user's to fix (network, disk), printed as one message. */
export class ArtilleryError extends Error {
  override name = "ArtilleryError";
}

/**
 * What every Artillery process the harness starts runs with. Telemetry is off: Artillery posts usage
 * events to a third party by default, and a harness that sends traffic only where it is pointed must not.
 * Playwright's browser download is skipped: Artillery's install would fetch Chromium otherwise, which
 * fails offline and which our virtual users never use.
 */
export const ARTILLERY_ENV = {
  ARTILLERY_DISABLE_TELEMETRY: "1",
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1",
} as const;

async function installedVersion(home: string): Promise<string | undefined> {
  try {
    const manifest = await readFile(join(home, "node_modules", "artillery", "package.json"), "utf8");
    return (JSON.parse(manifest) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * The path of Artillery's CLI (`bin/run`), installing the pinned version first when it is not there.
 * Artillery is 460 MB that most users of the harness never need, so it is not a dependency: the first
 * run that needs it installs it (about a minute), into a directory of its own so that it never touches
 * the project's lockfile. The install goes to a temporary directory, renamed into place once complete,
 * so an interrupted one leaves nothing half-installed behind.
 */
export async function ensureArtillery(log: (line: string) => void = () => {}): Promise<string> {
  const home = artilleryHome();
  const bin = join(home, "node_modules", "artillery", "bin", "run");
  if ((await installedVersion(home)) === ARTILLERY_VERSION) return bin;
  log(`installing artillery@${ARTILLERY_VERSION} into ${home} (once; about 460 MB)`);
  const partial = `${home}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  await writeFile(join(partial, "package.json"), `${JSON.stringify({ private: true }, null, 2)}\n`);
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const npm = spawn(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--loglevel=error",
        `artillery@${ARTILLERY_VERSION}`,
      ],
      { cwd: partial, env: { ...process.env, ...ARTILLERY_ENV }, stdio: ["ignore", "pipe", "pipe"] },
    );
    for (const stream of [npm.stdout, npm.stderr])
      stream.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    npm.on("error", reject);
    npm.on("close", resolve);
  }).catch((error: unknown) => {
    throw new ArtilleryError(`could not run npm to install artillery: ${(error as Error).message}`);
  });
  if (code !== 0 || (await installedVersion(partial)) !== ARTILLERY_VERSION) {
    await rm(partial, { recursive: true, force: true });
    const tail = output.join("").trim().split("\n").slice(-5).join("\n");
    throw new ArtilleryError(`npm install artillery@${ARTILLERY_VERSION} failed (exit ${code}):\n${tail}`);
  }
  await rm(home, { recursive: true, force: true });
  await mkdir(join(home, ".."), { recursive: true });
  await rename(partial, home);
  return bin;
}
