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
import { boundedId } from '#graph/model.ts';
import type { Ecosystem } from './types.ts';

export interface RepositoryRef {
  /** `github` or `gitlab`: the first segment of the repository's node ids. */
  source: string;
  /** `owner/name` (GitHub) or the project's full path (GitLab, `group/sub/project`). */
  repoKey: string;
}


export const codeIds = {
  repository: (repo: RepositoryRef) => boundedId(`${repo.source}:repository:${repo.repoKey}`),
  file: (repo: RepositoryRef, path: string) => boundedId(`${repo.source}:file:${repo.repoKey}/${path}`),
  symbol: (repo: RepositoryRef, path: string, qualifiedName: string) => boundedId(`${repo.source}:symbol:${repo.repoKey}/${path}#${qualifiedName}`),
  package: (ecosystem: Ecosystem, name: string) => boundedId(`package:${ecosystem}:${name}`),
};
