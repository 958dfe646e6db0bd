/**
 * Graph ids of what the GitHub sync writes (`github:<type>:<natural key>`, docs/integrations/github.md).
 * Repository and file ids come from the code analysis' helpers (functions/code/ids.ts), so its
 * DEFINES / IMPORTS / DEPENDS_ON edges land on the sync's nodes.
 */
import { boundedId } from '#graph/model.ts';
import { codeIds } from '../../code/index.ts';

const repo = (fullName: string) => ({ source: 'github', repoKey: fullName });


export const githubIds = {
  organization: (login: string) => `github:organization:${login.toLowerCase()}`,
  repository: (fullName: string) => codeIds.repository(repo(fullName)),
  branch: (fullName: string, branch: string) => boundedId(`github:branch:${fullName}@${branch}`),
  commit: (fullName: string, sha: string) => `github:commit:${fullName}@${sha}`,
  directory: (fullName: string, path: string) => boundedId(`github:directory:${fullName}/${path}`),
  file: (fullName: string, path: string) => codeIds.file(repo(fullName), path),
  issue: (fullName: string, number: number) => `github:issue:${fullName}#${number}`,
  pullRequest: (fullName: string, number: number) => `github:pull_request:${fullName}#${number}`,
  /** A GitHub account; commits no account claims are people by their email. */
  person: (login: string) => `github:person:${login.toLowerCase()}`,
  personByEmail: (email: string) => boundedId(`github:person:email:${email.toLowerCase()}`),
};
