/** GitLab graph ids (instance in the key, bounded length) and the closing pattern behind CLOSES edges. */
import { describe, expect, it } from '@jest/globals';
import { MAX_ID_BYTES } from '#graph/model.ts';
import { closingReferences, GitLabIds, instancePrefix } from '../../functions/connectors/gitlab/ids.ts';

describe('ids', () => {
  it('GitLab.com keys are bare paths; another instance (and its relative URL root) is part of the key', () => {
    expect(instancePrefix('https://gitlab.com')).toBe('');
    expect(instancePrefix('https://gitlab.com/')).toBe('');
    expect(instancePrefix('https://gitlab.acme.dev')).toBe('gitlab.acme.dev/');
    expect(instancePrefix('https://acme.dev/gitlab/')).toBe('acme.dev/gitlab/');
    expect(instancePrefix('http://127.0.0.1:3112')).toBe('127.0.0.1:3112/');
    const com = new GitLabIds('https://gitlab.com', 'acme/payments');
    expect(com.repository()).toBe('gitlab:repository:acme/payments');
    expect(com.branch('feature/x')).toBe('gitlab:branch:acme/payments/-/tree/feature/x');
    expect(com.mergeRequest(7)).toBe('gitlab:pull_request:acme/payments/-/merge_requests/7');
    expect(com.file('src/app.ts')).toBe('gitlab:file:acme/payments/src/app.ts');
    expect(com.user('jdoe')).toBe('gitlab:person:jdoe');
    expect(com.email('Jane@Acme.dev')).toBe('gitlab:person:jane@acme.dev');
    const own = new GitLabIds('https://acme.dev/gitlab', 'acme/payments');
    expect(own.repository()).toBe('gitlab:repository:acme.dev/gitlab/acme/payments');
    expect(own.group('acme')).toBe('gitlab:organization:acme.dev/gitlab/acme');
    expect(own.user('jdoe')).toBe('gitlab:person:acme.dev/gitlab/jdoe');
    expect(own.email('jane@acme.dev')).toBe('gitlab:person:jane@acme.dev');
  });

  it('an id over the graph limit keeps a readable prefix and ends in a hash', () => {
    const ids = new GitLabIds('https://gitlab.example.com', `${'group/'.repeat(45)}project`);
    const long = ids.branch(`feature/${'x'.repeat(250)}`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(MAX_ID_BYTES);
    expect(long).toMatch(/^gitlab:branch:gitlab\.example\.com\/group\/.*~[A-Za-z0-9_-]{22}$/);
    expect(ids.branch(`feature/${'x'.repeat(250)}`)).toBe(long);
    expect(ids.branch(`feature/${'x'.repeat(249)}y`)).not.toBe(long);
  });
});

describe("GitLab's closing pattern", () => {
  const base = 'https://gitlab.com';
  it.each([
    ['Closes #12', [{ iid: 12 }]],
    ['This fixes #3, #4 and acme/web#5.', [{ iid: 3 }, { iid: 4 }, { project: 'acme/web', iid: 5 }]],
    ['Resolves https://gitlab.com/acme/web/-/issues/6', [{ project: 'acme/web', iid: 6 }]],
    ['Implements: #8', [{ iid: 8 }]],
    ['closing issue #9 and fixed #10', [{ iid: 9 }, { iid: 10 }]],
    ['Resolved other#7', [{ project: 'other', iid: 7 }]],
    ['Mentions #9, prefix #3, fixes nothing', []],
    ['Closes https://elsewhere.example/acme/web/-/issues/6', []],
    ['', []],
  ])('%j', (text, expected) => {
    expect(closingReferences(text, base)).toEqual(expected);
  });
});
