/**
 * The thread side of WorkerPoolExtractor (worker-pool.ts): one TreeSitterExtractor per thread,
 * one file per message, and back either the extraction or the kind of failure (the pool turns it
 * into the same error the in-thread extractor throws, so the analysis counts the same warning).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GrammarUnavailableError, ParseTimeoutError, TreeSitterExtractor } from './tree-sitter.ts';
import type { ParseJob, ParseReply, WorkerExtractorOptions } from './worker-pool.ts';

const port = parentPort;
if (port) {
  const extractor = new TreeSitterExtractor((workerData as { options?: WorkerExtractorOptions } | undefined)?.options ?? {});
  port.on('message', async (job: ParseJob) => {
    let reply: ParseReply;
    try {
      reply = { id: job.id, result: await extractor.extract(job.language, job.source) };
    } catch (error) {
      const kind = error instanceof GrammarUnavailableError ? 'grammar-unavailable' : error instanceof ParseTimeoutError ? 'parse-timeout' : 'parser-crashed';
      reply = { id: job.id, error: kind, message: (error as Error).message };
    }
    port.postMessage(reply);
  });
}
