// Preloaded into `artillery run` (NODE_OPTIONS=--require): Artillery runs cpus−1 worker threads and has no
// setting for it, so `--workers N` shows it N+1 cpus.
const os = require("node:os");

const workers = Number(process.env.X402_ARTILLERY_WORKERS);
if (Number.isInteger(workers) && workers > 0) {
  const cpus = os.cpus;
  os.cpus = () => {
    const real = cpus();
    return Array.from({ length: workers + 1 }, (_, i) => real[i % real.length]);
  };
}
