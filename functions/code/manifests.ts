/**
 * Dependency manifests → declared dependencies (DEPENDS_ON repository → package), plus the facts
 * import resolution needs from them (a Go module's path, package.json `imports`, declared names).
 *
 * | manifest | ecosystem | prod | dev |
 * |---|---|---|---|
 * | package.json | npm | dependencies, optionalDependencies, peerDependencies | devDependencies |
 * | requirements*.txt | pypi | any other file | `dev`/`test`/`lint`/`doc` in the file name or folder |
 * | pyproject.toml | pypi | [project] dependencies, optional-dependencies, poetry dependencies | dev/test/lint/doc groups, [dependency-groups], poetry dev groups |
 * | go.mod | go | require | – |
 * | pom.xml | maven (`group:artifact`) | compile, runtime, provided, system | test |
 * | Cargo.toml | cargo | [dependencies], [target.*.dependencies], [workspace.dependencies] | [dev-dependencies], [build-dependencies] |
 * | Gemfile | gem | gems outside dev/test groups | `group :development, :test` |
 *
 * A manifest that does not parse yields nothing and a `manifest-unreadable` warning.
 */
import { XMLParser } from 'fast-xml-parser';
import { parse as parseToml } from 'smol-toml';
import type { ManifestKind } from './filters.ts';
import type { Ecosystem, ManifestDependency } from './types.ts';

export interface ManifestFacts {
  dependencies: ManifestDependency[];
  /** go.mod: the module path. */
  goModule?: string;
  /** package.json: its `imports` map (`#graph/*` subpath imports). */
  packageImports?: Record<string, unknown>;
  /** package.json: the package's own name (a workspace package importable by name). */
  packageName?: string;
}

const DEV_GROUP = /(^|[-_./\s])(dev|develop|development|test|tests|testing|lint|linting|docs?|typing|types|ci|bench)([-_./\s]|$)/i;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const asString = (value: unknown) => (typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '');

/** PEP 503: `Foo_Bar.baz` and `foo-bar-baz` are one project. */
export const normalizePypiName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

/** A PEP 508 requirement (`requests[socks]>=2.31; python_version>"3.8"`) → name and constraint. */
function parsePep508(requirement: string): { name: string; version: string } | undefined {
  const match = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(\([^)]*\)|[^;@]*)?/.exec(requirement);
  if (!match) return undefined;
  const version = (match[3] ?? '').replace(/^\(|\)$/g, '').trim();
  return { name: normalizePypiName(match[1]!), version };
}

function packageJson(path: string, text: string): ManifestFacts {
  const doc = JSON.parse(text) as unknown;
  if (!isObject(doc)) throw new Error('not a JSON object');
  const dependencies: ManifestDependency[] = [];
  const sections: [string, 'prod' | 'dev'][] = [
    ['dependencies', 'prod'],
    ['optionalDependencies', 'prod'],
    ['peerDependencies', 'prod'],
    ['devDependencies', 'dev'],
  ];
  for (const [section, scope] of sections) {
    const entries = doc[section];
    if (!isObject(entries)) continue;
    for (const [name, version] of Object.entries(entries)) {
      if (!name) continue;
      dependencies.push({ ecosystem: 'npm', name, version: asString(version), scope, manifest: path });
    }
  }
  return {
    dependencies,
    ...(isObject(doc.imports) ? { packageImports: doc.imports } : {}),
    ...(typeof doc.name === 'string' ? { packageName: doc.name } : {}),
  };
}

function requirementsTxt(path: string, text: string): ManifestFacts {
  const scope = DEV_GROUP.test(path.slice(path.lastIndexOf('/') + 1).replace(/\.txt$/i, '')) || /(^|\/)requirements\/(dev|test|lint|docs?)[^/]*$/i.test(path) ? 'dev' : 'prod';
  const dependencies: ManifestDependency[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    // Options (-r other.txt, -e ., --index-url), URLs and local paths name no PyPI project.
    if (!line || line.startsWith('-') || /^[a-z+]+:\/\//i.test(line) || line.startsWith('.') || line.startsWith('/')) continue;
    const requirement = parsePep508(line);
    if (requirement) dependencies.push({ ecosystem: 'pypi', ...requirement, scope, manifest: path });
  }
  return { dependencies };
}

function pyprojectToml(path: string, text: string): ManifestFacts {
  const doc = parseToml(text) as Json;
  const dependencies: ManifestDependency[] = [];
  const addPep508 = (list: unknown, scope: 'prod' | 'dev') => {
    if (!Array.isArray(list)) return;
    for (const item of list) {
      const requirement = typeof item === 'string' ? parsePep508(item) : undefined;
      if (requirement) dependencies.push({ ecosystem: 'pypi', ...requirement, scope, manifest: path });
    }
  };
  const addPoetry = (table: unknown, scope: 'prod' | 'dev') => {
    if (!isObject(table)) return;
    for (const [name, spec] of Object.entries(table)) {
      if (name.toLowerCase() === 'python') continue;
      const version = isObject(spec) ? asString(spec.version) : asString(spec);
      dependencies.push({ ecosystem: 'pypi', name: normalizePypiName(name), version, scope, manifest: path });
    }
  };
  const project = isObject(doc.project) ? doc.project : {};
  addPep508(project.dependencies, 'prod');
  if (isObject(project['optional-dependencies'])) {
    for (const [group, list] of Object.entries(project['optional-dependencies'])) addPep508(list, DEV_GROUP.test(group) ? 'dev' : 'prod');
  }
  if (isObject(doc['dependency-groups'])) for (const list of Object.values(doc['dependency-groups'])) addPep508(list, 'dev');
  const tool = isObject(doc.tool) ? doc.tool : {};
  const poetry = isObject(tool.poetry) ? tool.poetry : {};
  addPoetry(poetry.dependencies, 'prod');
  addPoetry(poetry['dev-dependencies'], 'dev');
  if (isObject(poetry.group)) {
    for (const [group, body] of Object.entries(poetry.group)) if (isObject(body)) addPoetry(body.dependencies, group === 'main' ? 'prod' : 'dev');
  }
  return { dependencies };
}

function goMod(path: string, text: string): ManifestFacts {
  const dependencies: ManifestDependency[] = [];
  let goModule: string | undefined;
  let inRequire = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (!line) continue;
    const module = /^module\s+"?([^\s"]+)"?/.exec(line);
    if (module) goModule = module[1];
    if (inRequire) {
      if (line === ')') inRequire = false;
      else addGoRequire(line);
      continue;
    }
    if (/^require\s*\($/.test(line)) inRequire = true;
    else if (line.startsWith('require ')) addGoRequire(line.slice('require '.length));
  }
  function addGoRequire(spec: string) {
    const [name, version] = spec.split(/\s+/);
    if (name) dependencies.push({ ecosystem: 'go', name: name.replace(/"/g, ''), version: version ?? '', scope: 'prod', manifest: path });
  }
  return { dependencies, ...(goModule ? { goModule } : {}) };
}

const xml = new XMLParser({ ignoreAttributes: true, processEntities: false, parseTagValue: false, isArray: (name) => name === 'dependency' });

function pomXml(path: string, text: string): ManifestFacts {
  const doc = xml.parse(text) as Json;
  const project = isObject(doc.project) ? doc.project : undefined;
  if (!project) throw new Error('no <project> element');
  const properties: Record<string, string> = {};
  if (isObject(project.properties)) for (const [key, value] of Object.entries(project.properties)) properties[key] = asString(value);
  properties['project.version'] = asString(project.version) || (isObject(project.parent) ? asString(project.parent.version) : '');
  const substitute = (value: string) => value.replace(/\$\{([^}]+)\}/g, (whole, key: string) => properties[key] ?? whole);
  const dependencies: ManifestDependency[] = [];
  const list = isObject(project.dependencies) ? project.dependencies.dependency : undefined;
  for (const dependency of Array.isArray(list) ? list : []) {
    if (!isObject(dependency)) continue;
    const group = substitute(asString(dependency.groupId).trim());
    const artifact = substitute(asString(dependency.artifactId).trim());
    if (!group || !artifact) continue;
    const scope = asString(dependency.scope).trim() === 'test' ? 'dev' : 'prod';
    dependencies.push({ ecosystem: 'maven', name: `${group}:${artifact}`, version: substitute(asString(dependency.version).trim()), scope, manifest: path });
  }
  return { dependencies };
}

function cargoToml(path: string, text: string): ManifestFacts {
  const doc = parseToml(text) as Json;
  const dependencies: ManifestDependency[] = [];
  const add = (table: unknown, scope: 'prod' | 'dev') => {
    if (!isObject(table)) return;
    for (const [key, spec] of Object.entries(table)) {
      // `foo = { package = "real-name", version = "1" }` renames a crate.
      const name = isObject(spec) && typeof spec.package === 'string' ? spec.package : key;
      const version = isObject(spec) ? asString(spec.version) || (spec.workspace === true ? 'workspace' : '') : asString(spec);
      dependencies.push({ ecosystem: 'cargo', name, version, scope, manifest: path });
    }
  };
  add(doc.dependencies, 'prod');
  add(doc['dev-dependencies'], 'dev');
  add(doc['build-dependencies'], 'dev');
  if (isObject(doc.workspace)) add(doc.workspace.dependencies, 'prod');
  if (isObject(doc.target)) {
    for (const target of Object.values(doc.target)) {
      if (!isObject(target)) continue;
      add(target.dependencies, 'prod');
      add(target['dev-dependencies'], 'dev');
      add(target['build-dependencies'], 'dev');
    }
  }
  return { dependencies };
}

function gemfile(path: string, text: string): ManifestFacts {
  const dependencies: ManifestDependency[] = [];
  const groups: boolean[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const group = /^group\s+(.+?)\s+do\b/.exec(line);
    if (group) {
      groups.push(DEV_GROUP.test(group[1]!.replace(/[:,'"]/g, ' ')));
      continue;
    }
    if (/^(platforms?|source|git|path)\b.*\bdo\b/.test(line)) {
      groups.push(groups[groups.length - 1] ?? false);
      continue;
    }
    if (line === 'end') {
      groups.pop();
      continue;
    }
    const gem = /^gem\s+['"]([^'"]+)['"]\s*(.*)$/.exec(line);
    if (!gem) continue;
    const rest = gem[2] ?? '';
    const versions = [...rest.matchAll(/(?:^|,)\s*['"]([^'"]*\d[^'"]*)['"]/g)].map((match) => match[1]!);
    const inlineGroup = /\bgroups?:\s*(\[[^\]]*\]|:\w+)/.exec(rest);
    const dev = (groups[groups.length - 1] ?? false) || (inlineGroup ? DEV_GROUP.test(inlineGroup[1]!.replace(/[:,[\]'"]/g, ' ')) : false);
    dependencies.push({ ecosystem: 'gem', name: gem[1]!, version: versions.join(', '), scope: dev ? 'dev' : 'prod', manifest: path });
  }
  return { dependencies };
}

const PARSERS: Record<ManifestKind, (path: string, text: string) => ManifestFacts> = {
  'package.json': packageJson,
  'requirements.txt': requirementsTxt,
  'pyproject.toml': pyprojectToml,
  'go.mod': goMod,
  'pom.xml': pomXml,
  'Cargo.toml': cargoToml,
  Gemfile: gemfile,
};

/** Throws when the manifest does not parse; the caller counts a `manifest-unreadable` warning. */
export function parseManifest(kind: ManifestKind, path: string, text: string): ManifestFacts {
  return PARSERS[kind](path, text);
}

export const ECOSYSTEMS: readonly Ecosystem[] = ['npm', 'pypi', 'go', 'maven', 'cargo', 'gem'];
