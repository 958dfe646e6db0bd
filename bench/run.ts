/** `npm run bench`: runs every benchmark and prints its figures. `npm run bench -- graph` runs one. */
import { benchCodeSymbols } from './code-symbols.bench.ts';
import { benchGitHubSync } from './github-sync.bench.ts';
import { benchGraphWriter } from './graph-writer.bench.ts';

const BENCHMARKS: Record<string, () => Promise<void>> = {
  graph: benchGraphWriter,
  code: benchCodeSymbols,
  github: benchGitHubSync,
};

const wanted = process.argv.slice(2);
for (const [name, run] of Object.entries(BENCHMARKS)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  await run();
}
