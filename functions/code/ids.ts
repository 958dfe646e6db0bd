/**
 * Graph ids of what the code analysis emits. The GitHub/GitLab sync builds its file and repository
 * ids with these same helpers, so DEFINES and IMPORTS edges land on the nodes the sync wrote.
 *
 * - repository: `<source>:repository:<repoKey>`            github:repository:acme/payments
 * - file:       `<source>:file:<repoKey>/<path>`            github:file:acme/payments/src/app.ts
 * - symbol:     `<source>:symbol:<repoKey>/<path>#<qname>`  github:symbol:acme/payments/src/app.ts#App.start
 * - package:    `package:<ecosystem>:<name>`                package:npm:express, package:pypi:requests
 *
 * Packages carry no source prefix: `npm:express` is one public thing whoever depends on it, so
 * a GitHub and a GitLab repository depending on it share one node (its `sources` keep provenance).
 * Ids longer than the graph's limit keep a readable prefix and end in a hash of the full id.
 */
import { createHash } from 'node:crypto';
import { MAX_ID_BYTES } from '#graph/model.ts';
import type { Ecosystem } from './types.ts';

export interface RepositoryRef {
  /** `github` or `gitlab`: the first segment of the repository's node ids. */
  source: string;
  /** `owner/name` (GitHub) or the project's full path (GitLab, `group/sub/project`). */
  repoKey: string;
}

function bounded(id: string): string {
  if (Buffer.byteLength(id) <= MAX_ID_BYTES) return id;
  const hash = createHash('sha256').update(id).digest('base64url').slice(0, 22);
  // Cut on a character boundary well under the limit, then append the hash of the whole id.
  let prefix = id.slice(0, MAX_ID_BYTES - 64);
  while (Buffer.byteLength(prefix) > MAX_ID_BYTES - 64) prefix = prefix.slice(0, -1);
  return `${prefix}~${hash}`;
}

export const codeIds = {
  repository: (repo: RepositoryRef) => bounded(`${repo.source}:repository:${repo.repoKey}`),
  file: (repo: RepositoryRef, path: string) => bounded(`${repo.source}:file:${repo.repoKey}/${path}`),
  symbol: (repo: RepositoryRef, path: string, qualifiedName: string) => bounded(`${repo.source}:symbol:${repo.repoKey}/${path}#${qualifiedName}`),
  package: (ecosystem: Ecosystem, name: string) => bounded(`package:${ecosystem}:${name}`),
};
