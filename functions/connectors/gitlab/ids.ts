/**
 * Graph ids of what the GitLab sync writes, in the vocabulary of docs (../shared/spec/graph.md):
 * `gitlab:<type>:<key>`, where the key is the item's path on its instance, as GitLab's own web
 * URLs spell it:
 *
 * | node | key | example |
 * |---|---|---|
 * | organization (group) | full path | `gitlab:organization:acme/platform` |
 * | repository (project) | path with namespace | `gitlab:repository:acme/platform/deploy` |
 * | branch | `<project>/-/tree/<branch>` | `gitlab:branch:acme/payments/-/tree/feature/x` |
 * | commit | `<project>/-/commit/<sha>` | `gitlab:commit:acme/payments/-/commit/9f1c…` |
 * | directory, file | `<project>/<path>` (the code analysis' `codeIds`) | `gitlab:file:acme/payments/src/app.ts` |
 * | issue | `<project>/-/issues/<iid>` | `gitlab:issue:acme/payments/-/issues/12` |
 * | pull_request (merge request) | `<project>/-/merge_requests/<iid>` | `gitlab:pull_request:acme/payments/-/merge_requests/7` |
 * | pipeline, job | `<project>/-/pipelines/<id>`, `<project>/-/jobs/<id>` | `gitlab:pipeline:acme/payments/-/pipelines/4711` |
 * | person | username; or the commit email for commit authors | `gitlab:person:jdoe`, `gitlab:person:jane@acme.dev` |
 *
 * `/-/` cannot occur in a project path (GitLab reserves `-`), so a key never reads two ways.
 * Projects, groups and usernames on GitLab.com have bare keys; on any other instance the key
 * starts with the instance (`gitlab.acme.dev/acme/payments`, `acme.dev/gitlab/acme/payments` with
 * a relative URL root): two instances' `acme/payments` are two different projects. Email
 * addresses are global and carry no instance.
 */
import { boundedId } from '#graph/model.ts';
import { codeIds, type RepositoryRef } from '../../code/index.ts';

export const SOURCE = 'gitlab';


/** `''` for GitLab.com, `host[:port][/root]/` for any other instance. */
export function instancePrefix(baseUrl: string): string {
  const url = new URL(baseUrl);
  const root = url.pathname.replace(/\/+$/, '');
  if (url.hostname === 'gitlab.com' && url.port === '' && root === '') return '';
  return `${url.host}${root}/`;
}

export class GitLabIds {
  readonly prefix: string;
  /** The project's key (`acme/payments`, or with the instance in front). */
  readonly repoKey: string;
  readonly repo: RepositoryRef;

  constructor(baseUrl: string, projectPath: string) {
    this.prefix = instancePrefix(baseUrl);
    this.repoKey = `${this.prefix}${projectPath}`;
    this.repo = { source: SOURCE, repoKey: this.repoKey };
  }

  group(fullPath: string): string {
    return boundedId(`${SOURCE}:organization:${this.prefix}${fullPath}`);
  }
  repository(): string {
    return codeIds.repository(this.repo);
  }
  branch(name: string): string {
    return boundedId(`${SOURCE}:branch:${this.repoKey}/-/tree/${name}`);
  }
  commit(sha: string): string {
    return boundedId(`${SOURCE}:commit:${this.repoKey}/-/commit/${sha}`);
  }
  file(path: string): string {
    return codeIds.file(this.repo, path);
  }
  directory(path: string): string {
    return boundedId(`${SOURCE}:directory:${this.repoKey}/${path}`);
  }
  issue(iid: number, projectKey = this.repoKey): string {
    return boundedId(`${SOURCE}:issue:${projectKey}/-/issues/${iid}`);
  }
  mergeRequest(iid: number): string {
    return boundedId(`${SOURCE}:pull_request:${this.repoKey}/-/merge_requests/${iid}`);
  }
  pipeline(id: number): string {
    return boundedId(`${SOURCE}:pipeline:${this.repoKey}/-/pipelines/${id}`);
  }
  job(id: number): string {
    return boundedId(`${SOURCE}:job:${this.repoKey}/-/jobs/${id}`);
  }
  user(username: string): string {
    return boundedId(`${SOURCE}:person:${this.prefix}${username}`);
  }
  email(address: string): string {
    return boundedId(`${SOURCE}:person:${address.trim().toLowerCase()}`);
  }
}

// GitLab's default closing pattern (Settings > Repository > "Default issue closing pattern"):
// close/closes/closed/closing, fix/fixes/fixed/fixing, resolve/resolves/resolved/resolving,
// implement/implements/implemented/implementing, then issue references separated by commas or "and".
const KEYWORD = /\b(?:clos(?:e[sd]?|ing)|fix(?:e[sd]|ing)?|resolv(?:e[sd]?|ing)|implement(?:s|ed|ing)?):? +/gi;
const REFERENCE = /^(?:issues? +)?(?:([A-Za-z0-9_.\-/]+)?#(\d+)|(https?:\/\/\S+?)\/-\/issues\/(\d+))/i;
const SEPARATOR = /^(?: *,? +and +| *, *| +)/i;

export interface IssueReference {
  /** The project's full path when the reference names another project; undefined: this project. */
  project?: string;
  iid: number;
}

/**
 * The issues a merge request description says it closes ("Closes #12", "fixes #3, #4 and
 * acme/web#5", "Resolves https://gitlab.com/acme/web/-/issues/6"), as GitLab's default closing
 * pattern reads them. `instanceUrl` (the base URL) lets full issue URLs of the same instance count.
 */
export function closingReferences(text: string | null | undefined, instanceUrl: string): IssueReference[] {
  if (!text) return [];
  const base = instanceUrl.replace(/\/+$/, '');
  const found = new Map<string, IssueReference>();
  for (const match of text.matchAll(KEYWORD)) {
    let rest = text.slice(match.index + match[0].length);
    for (;;) {
      const ref = REFERENCE.exec(rest);
      if (!ref) break;
      let reference: IssueReference | undefined;
      if (ref[2]) reference = { ...(ref[1] ? { project: ref[1].replace(/\/+$/, '') } : {}), iid: Number(ref[2]) };
      else if (ref[3] && ref[3].startsWith(`${base}/`)) reference = { project: ref[3].slice(base.length + 1), iid: Number(ref[4]) };
      if (reference) found.set(`${reference.project ?? ''}#${reference.iid}`, reference);
      rest = rest.slice(ref[0].length);
      const separator = SEPARATOR.exec(rest);
      if (!separator || separator[0].length === 0) break;
      rest = rest.slice(separator[0].length);
    }
  }
  return [...found.values()];
}
