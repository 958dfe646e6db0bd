/**
 * Graph ids of what the GitHub sync writes (`github:<type>:<natural key>`, docs/integrations/github.md).
 * Repository and file ids come from the code analysis' helpers (functions/code/ids.ts), so its
 * DEFINES / IMPORTS / DEPENDS_ON edges land on the sync's nodes.
 */
import { createHash } from 'node:crypto';
import { MAX_ID_BYTES } from '#graph/model.ts';
import { codeIds } from '../../code/index.ts';

const repo = (fullName: string) => ({ source: 'github', repoKey: fullName });

/** Ids over the graph's limit (a deep path, a long branch name) keep a readable prefix and end in a hash. */
function bounded(id: string): string {
  if (Buffer.byteLength(id) <= MAX_ID_BYTES) return id;
  let prefix = id.slice(0, MAX_ID_BYTES - 64);
  while (Buffer.byteLength(prefix) > MAX_ID_BYTES - 64) prefix = prefix.slice(0, -1);
  return `${prefix}~${createHash('sha256').update(id).digest('base64url').slice(0, 22)}`;
}

export const githubIds = {
  organization: (login: string) => `github:organization:${login.toLowerCase()}`,
  repository: (fullName: string) => codeIds.repository(repo(fullName)),
  branch: (fullName: string, branch: string) => bounded(`github:branch:${fullName}@${branch}`),
  commit: (fullName: string, sha: string) => `github:commit:${fullName}@${sha}`,
  directory: (fullName: string, path: string) => bounded(`github:directory:${fullName}/${path}`),
  file: (fullName: string, path: string) => codeIds.file(repo(fullName), path),
  issue: (fullName: string, number: number) => `github:issue:${fullName}#${number}`,
  pullRequest: (fullName: string, number: number) => `github:pull_request:${fullName}#${number}`,
  /** A GitHub account; commits no account claims are people by their email. */
  person: (login: string) => `github:person:${login.toLowerCase()}`,
  personByEmail: (email: string) => bounded(`github:person:email:${email.toLowerCase()}`),
};
