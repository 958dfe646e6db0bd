/**
 * Manifests → DEPENDS_ON repository → package, with the version constraint as written and the
 * dev/prod scope; the package node id is shared across repositories (and across GitHub and GitLab).
 */
import { describe, expect, it } from '@jest/globals';
import { analyzeRepositoryArchive } from '../../functions/code/analyze.ts';
import { parseManifest } from '../../functions/code/manifests.ts';
import { MemorySink, repoArchive, streamOf } from './support.ts';

const analyze = async (repoKey: string, files: Record<string, string>, source = 'github') => {
  const sink = new MemorySink();
  const result = await analyzeRepositoryArchive({ repository: { source, repoKey }, archive: streamOf(await repoArchive(files)), graph: sink });
  const deps = Object.fromEntries(sink.edgesOf('DEPENDS_ON').map((edge) => [edge.to, edge.props]));
  return { sink, result, deps };
};

describe('manifests', () => {
  it('reads package.json dependencies with their scope, and two repositories share one package node', async () => {
    const payments = await analyze('acme/payments', { 'package.json': JSON.stringify({ dependencies: { express: '^4.19.0' }, devDependencies: { jest: '^29.7.0' } }) });
    const shop = await analyze('acme/shop', { 'package.json': JSON.stringify({ dependencies: { express: '~4.18.2' } }) }, 'gitlab');
    expect(payments.deps).toEqual({
      'package:npm:express': { version: '^4.19.0', scope: 'prod', ecosystem: 'npm', manifest: 'package.json' },
      'package:npm:jest': { version: '^29.7.0', scope: 'dev', ecosystem: 'npm', manifest: 'package.json' },
    });
    expect(shop.deps['package:npm:express']).toMatchObject({ version: '~4.18.2', scope: 'prod' });
    expect(payments.sink.edgesOf('DEPENDS_ON')[0]!.from).toBe('github:repository:acme/payments');
    expect(shop.sink.edgesOf('DEPENDS_ON')[0]!.from).toBe('gitlab:repository:acme/shop');
    expect(payments.sink.nodes.get('package:npm:express')).toEqual(shop.sink.nodes.get('package:npm:express'));
  });

  it('ignores manifests inside vendored trees and lets the root manifest decide in a monorepo', async () => {
    const { deps } = await analyze('acme/mono', {
      'package.json': JSON.stringify({ devDependencies: { typescript: '~6.0.3' } }),
      'packages/api/package.json': JSON.stringify({ dependencies: { typescript: '^5.0.0', zod: '^4.0.0' } }),
      'node_modules/left-pad/package.json': JSON.stringify({ dependencies: { nothing: '1.0.0' } }),
    });
    // Declared as prod somewhere, so prod; the version is the root manifest's.
    expect(deps['package:npm:typescript']).toEqual({ version: '~6.0.3', scope: 'prod', ecosystem: 'npm', manifest: 'package.json' });
    expect(deps['package:npm:zod']).toMatchObject({ manifest: 'packages/api/package.json' });
    expect(deps['package:npm:nothing']).toBeUndefined();
  });

  it('reads requirements files, with dev scope from the file name', async () => {
    const { deps } = await analyze('acme/py', {
      'requirements.txt': '# runtime\nrequests[socks]==2.31.0 ; python_version > "3.8"\nDjango>=4.2,<5\n-r base.txt\n-e .\ngit+https://example.com/x.git\n',
      'requirements-dev.txt': 'pytest>=7.4\n',
    });
    expect(deps['package:pypi:requests']).toMatchObject({ version: '==2.31.0', scope: 'prod' });
    expect(deps['package:pypi:django']).toMatchObject({ version: '>=4.2,<5', scope: 'prod' });
    expect(deps['package:pypi:pytest']).toMatchObject({ version: '>=7.4', scope: 'dev' });
    expect(Object.keys(deps)).toHaveLength(3);
  });

  it('reads pyproject.toml: PEP 621, optional groups, dependency groups and Poetry', () => {
    const facts = parseManifest(
      'pyproject.toml',
      'pyproject.toml',
      `[project]
name = "svc"
dependencies = ["httpx>=0.27", "Pydantic_Core==2.0"]

[project.optional-dependencies]
test = ["pytest>=8"]
postgres = ["psycopg[binary]>=3"]

[dependency-groups]
lint = ["ruff==0.5.0"]

[tool.poetry.dependencies]
python = "^3.11"
fastapi = { version = "^0.110", extras = ["all"] }

[tool.poetry.group.dev.dependencies]
mypy = "^1.10"
`,
    );
    const byName = Object.fromEntries(facts.dependencies.map((dependency) => [dependency.name, [dependency.version, dependency.scope]]));
    expect(byName).toEqual({
      httpx: ['>=0.27', 'prod'],
      'pydantic-core': ['==2.0', 'prod'],
      pytest: ['>=8', 'dev'],
      psycopg: ['>=3', 'prod'],
      ruff: ['==0.5.0', 'dev'],
      fastapi: ['^0.110', 'prod'],
      mypy: ['^1.10', 'dev'],
    });
  });

  it('reads go.mod requires and its module path', () => {
    const facts = parseManifest('go.mod', 'go.mod', 'module github.com/acme/api\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n\nrequire (\n\tgithub.com/gin-gonic/gin v1.9.1 // indirect\n\tgolang.org/x/sync v0.7.0\n)\n');
    expect(facts.goModule).toBe('github.com/acme/api');
    expect(facts.dependencies.map((dependency) => `${dependency.name}@${dependency.version}`)).toEqual(['github.com/google/uuid@v1.6.0', 'github.com/gin-gonic/gin@v1.9.1', 'golang.org/x/sync@v0.7.0']);
  });

  it('reads pom.xml dependencies with properties and test scope', () => {
    const facts = parseManifest(
      'pom.xml',
      'pom.xml',
      `<?xml version="1.0"?>
<project>
  <groupId>com.acme</groupId><artifactId>billing</artifactId><version>1.2.0</version>
  <properties><spring.version>6.1.5</spring.version></properties>
  <dependencies>
    <dependency><groupId>org.springframework</groupId><artifactId>spring-core</artifactId><version>\${spring.version}</version></dependency>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13.2</version><scope>test</scope></dependency>
  </dependencies>
  <build><plugins><plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId></plugin></plugins></build>
</project>`,
    );
    expect(facts.dependencies.map((dependency) => [dependency.name, dependency.version, dependency.scope])).toEqual([
      ['org.springframework:spring-core', '6.1.5', 'prod'],
      ['junit:junit', '4.13.2', 'dev'],
    ]);
  });

  it('reads Cargo.toml dependency tables, renames and workspace inheritance', () => {
    const facts = parseManifest(
      'Cargo.toml',
      'Cargo.toml',
      `[package]
name = "ledger"

[dependencies]
serde = { version = "1.0", features = ["derive"] }
tokio = "1.37"
json = { package = "serde_json", version = "1" }
shared = { workspace = true }

[dev-dependencies]
proptest = "1.4"

[target.'cfg(unix)'.dependencies]
libc = "0.2"
`,
    );
    expect(facts.dependencies.map((dependency) => [dependency.name, dependency.version, dependency.scope])).toEqual([
      ['serde', '1.0', 'prod'],
      ['tokio', '1.37', 'prod'],
      ['serde_json', '1', 'prod'],
      ['shared', 'workspace', 'prod'],
      ['proptest', '1.4', 'dev'],
      ['libc', '0.2', 'prod'],
    ]);
  });

  it('reads Gemfile gems with constraints and development/test groups', () => {
    const facts = parseManifest(
      'Gemfile',
      'Gemfile',
      `source "https://rubygems.org"
gem "rails", "~> 7.1", ">= 7.1.3"
gem 'pg'
group :development, :test do
  gem "rspec-rails", "~> 6.1"
end
gem "rubocop", require: false, group: :development
`,
    );
    expect(facts.dependencies.map((dependency) => [dependency.name, dependency.version, dependency.scope])).toEqual([
      ['rails', '~> 7.1, >= 7.1.3', 'prod'],
      ['pg', '', 'prod'],
      ['rspec-rails', '~> 6.1', 'dev'],
      ['rubocop', '', 'dev'],
    ]);
  });

  it('counts a manifest that does not parse as a warning and goes on', async () => {
    const { result, deps } = await analyze('acme/broken', {
      'package.json': '{ "dependencies": { "express": ',
      'Cargo.toml': '[dependencies\nserde = ',
      'go.mod': 'module github.com/acme/ok\nrequire github.com/google/uuid v1.6.0\n',
    });
    expect(result.complete).toBe(true);
    expect(result.warnings).toEqual([expect.objectContaining({ code: 'manifest-unreadable', count: 2 })]);
    expect(Object.keys(deps)).toEqual(['package:go:github.com/google/uuid']);
  });
});
