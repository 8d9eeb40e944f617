import { createHash } from "node:crypto";

const INPUT = Buffer.alloc(64, 7);

/**
 * How fast this machine does a fixed piece of work right now: SHA-256 digests of 64 bytes per millisecond
 * over `ms`, on the calling thread. Native code, so the figure moves with the CPU the machine is given, not
 * with the JIT. On a shared VM it moves a lot: on the 2-core machine these figures come from, it ranged
 * 431–920 per ms within 40 idle seconds, and a CPU-bound knee cannot reproduce more closely than that.
 */
export function machineSpeed(ms = 300): number {
  const started = performance.now();
  let digests = 0;
  while (performance.now() - started < ms) {
    for (let i = 0; i < 100; i++) createHash("sha256").update(INPUT).digest();
    digests += 100;
  }
  return Math.round(digests / (performance.now() - started));
}
