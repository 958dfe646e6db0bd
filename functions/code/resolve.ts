/**
 * Import resolution, once the whole archive was read (a file may import one that comes later in
 * the archive, and go.mod may come after the .go files):
 * - JS/TS: relative specifiers to files (exact, then extensions, `.js` written for a `.ts` source,
 *   then `index.*`), `#subpath` imports through the nearest package.json `imports` map, bare
 *   specifiers to `npm:<package>` (Node built-ins are no dependency);
 * - Python: relative imports against the package folders, absolute ones against the repository
 *   (root, `src/`, folders holding a pyproject.toml, the importing file's folder), the rest to
 *   `pypi:<project>` unless standard library;
 * - Go: import paths under a go.mod module path to that package directory's .go files (a Go
 *   import names a package, i.e. a directory), the rest to `go:<module>` unless standard library;
 * - Java: `a.b.C` to the file ending in `a/b/C.java`, wildcards to that package's files; other
 *   imports name no artifact we could know and are left out;
 * - Ruby: `require_relative` to files, `require` to a repository file under lib/ or to a gem the
 *   Gemfile declares.
 * A specifier that leaves the repository (`../../..` past the root) resolves to nothing.
 */
import { builtinModules } from 'node:module';
import { posix } from 'node:path';
import { normalizePypiName } from './manifests.ts';
import { PYTHON_STDLIB } from './python-stdlib.ts';
import type { Ecosystem, ImportRef, LanguageId } from './types.ts';

export type ImportTarget = { kind: 'file'; path: string } | { kind: 'package'; ecosystem: Ecosystem; name: string };

export interface GoModule {
  dir: string;
  module: string;
}

export interface ResolutionContext {
  /** Every file path of the repository (the archive's, plus the caller's tree when given). */
  files: Set<string>;
  /** package.json folder → its `imports` map. */
  packageImports: Map<string, Record<string, unknown>>;
  goModules: GoModule[];
  /** Module paths that go.mod files require (longest prefix wins for an external import). */
  goRequires: Set<string>;
  /** Declared dependencies by ecosystem (normalized names), to map Python modules and Ruby requires. */
  declared: Map<Ecosystem, Set<string>>;
  /** Folders holding a pyproject.toml or setup.py (Python import roots). */
  pythonRoots: Set<string>;
}

const MAX_FILES_PER_IMPORT = 50;
const JS_EXTENSIONS = ['.ts', '.tsx', '.d.ts', '.js', '.jsx', '.mjs', '.cjs', '.mts', '.cts'];
const NODE_BUILTINS = new Set(builtinModules);

/** Python import names that differ from their PyPI project. */
const PYPI_ALIASES: Record<string, string> = {
  yaml: 'pyyaml',
  PIL: 'pillow',
  sklearn: 'scikit-learn',
  cv2: 'opencv-python',
  bs4: 'beautifulsoup4',
  dateutil: 'python-dateutil',
  jwt: 'pyjwt',
  dotenv: 'python-dotenv',
  attr: 'attrs',
  OpenSSL: 'pyopenssl',
  Crypto: 'pycryptodome',
  magic: 'python-magic',
  serial: 'pyserial',
  git: 'gitpython',
  jose: 'python-jose',
  docx: 'python-docx',
  google: 'protobuf',
  pkg_resources: 'setuptools',
  MySQLdb: 'mysqlclient',
  psycopg2: 'psycopg2',
  zmq: 'pyzmq',
  usb: 'pyusb',
  fitz: 'pymupdf',
};

export function emptyResolutionContext(files: Set<string> = new Set()): ResolutionContext {
  return { files, packageImports: new Map(), goModules: [], goRequires: new Set(), declared: new Map(), pythonRoots: new Set(['']) };
}

/** `a/b/../c` → `a/c`; undefined when it climbs out of the repository. */
function inRepo(path: string): string | undefined {
  const normalized = posix.normalize(path);
  if (normalized === '..' || normalized.startsWith('../') || normalized.startsWith('/')) return undefined;
  return normalized === '.' ? '' : normalized.replace(/\/$/, '');
}

const dirOf = (path: string) => {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
};
const join = (dir: string, rest: string) => (dir ? `${dir}/${rest}` : rest);

// ---------------------------------------------------------------- JavaScript / TypeScript

function resolveJsFile(base: string, files: Set<string>): string | undefined {
  const path = inRepo(base);
  if (path === undefined) return undefined;
  if (path && files.has(path)) return path;
  const written = /\.(m|c)?jsx?$/.exec(path);
  if (written) {
    // TypeScript ESM writes `./model.js` for `./model.ts`.
    const stem = path.slice(0, -written[0].length);
    const swaps = written[1] === 'm' ? ['.mts'] : written[1] === 'c' ? ['.cts'] : ['.ts', '.tsx'];
    for (const extension of swaps) if (files.has(stem + extension)) return stem + extension;
  }
  for (const extension of JS_EXTENSIONS) if (files.has(path + extension)) return path + extension;
  for (const extension of JS_EXTENSIONS) if (files.has(join(path, `index${extension}`))) return join(path, `index${extension}`);
  return undefined;
}

/** The first string target of a package.json `imports` entry (conditions: import, node, default, require). */
function importTarget(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(importTarget).find(Boolean);
  if (value && typeof value === 'object') {
    const conditions = value as Record<string, unknown>;
    for (const key of ['import', 'node', 'default', 'require', ...Object.keys(conditions)]) {
      const target = importTarget(conditions[key]);
      if (target) return target;
    }
  }
  return undefined;
}

function resolveSubpathImport(from: string, specifier: string, ctx: ResolutionContext): string | undefined {
  for (let dir: string | undefined = dirOf(from); dir !== undefined; dir = dir === '' ? undefined : dirOf(dir)) {
    const map = ctx.packageImports.get(dir);
    if (!map) continue;
    for (const [key, value] of Object.entries(map)) {
      const star = key.indexOf('*');
      let target: string | undefined;
      if (star === -1) {
        if (key === specifier) target = importTarget(value);
      } else if (specifier.startsWith(key.slice(0, star)) && specifier.endsWith(key.slice(star + 1)) && specifier.length >= key.length - 1) {
        const matched = specifier.slice(star, specifier.length - (key.length - star - 1));
        target = importTarget(value)?.replaceAll('*', matched);
      }
      if (target?.startsWith('./')) return resolveJsFile(join(dir, target.slice(2)), ctx.files);
    }
    return undefined; // the nearest package.json with an imports map decides
  }
  return undefined;
}

function resolveJs(from: string, specifier: string, ctx: ResolutionContext): ImportTarget[] {
  if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..') {
    const path = resolveJsFile(join(dirOf(from), specifier), ctx.files);
    return path !== undefined ? [{ kind: 'file', path }] : [];
  }
  if (specifier.startsWith('#')) {
    const path = resolveSubpathImport(from, specifier, ctx);
    return path !== undefined ? [{ kind: 'file', path }] : [];
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier) || specifier.startsWith('/')) return []; // node:fs, https://…, absolute paths
  const match = /^(@[a-z0-9][\w.-]*\/[a-z0-9][\w.-]*|[a-z0-9][\w.-]*)(\/|$)/i.exec(specifier);
  if (!match) return []; // `@/components` and other bundler aliases
  const name = match[1]!;
  if (NODE_BUILTINS.has(name) || NODE_BUILTINS.has(specifier)) return [];
  return [{ kind: 'package', ecosystem: 'npm', name }];
}

// ---------------------------------------------------------------- Python

function pythonModuleFile(dir: string, dotted: string, files: Set<string>): string | undefined {
  const base = join(dir, dotted.split('.').join('/'));
  if (files.has(`${base}.py`)) return `${base}.py`;
  if (files.has(`${base}.pyi`)) return `${base}.pyi`;
  if (files.has(`${base}/__init__.py`)) return `${base}/__init__.py`;
  return undefined;
}

function pypiTarget(top: string, ctx: ResolutionContext): ImportTarget[] {
  if (PYTHON_STDLIB.has(top)) return [];
  const declared = ctx.declared.get('pypi');
  const normalized = normalizePypiName(top);
  const alias = PYPI_ALIASES[top];
  const name = declared?.has(normalized) ? normalized : alias && declared?.has(alias) ? alias : (alias ?? normalized);
  return [{ kind: 'package', ecosystem: 'pypi', name }];
}

function resolvePython(from: string, ref: ImportRef, ctx: ResolutionContext): ImportTarget[] {
  const { specifier, names } = ref;
  const dots = /^\.*/.exec(specifier)![0].length;
  const rest = specifier.slice(dots);
  const found = (path: string | undefined): ImportTarget[] => (path !== undefined ? [{ kind: 'file', path }] : []);

  if (dots > 0) {
    let dir: string | undefined = dirOf(from);
    for (let i = 1; i < dots && dir !== undefined; i++) dir = dir === '' ? undefined : dirOf(dir);
    if (dir === undefined) return [];
    const targets: ImportTarget[] = [];
    let needsModule = !names || names.length === 0;
    for (const name of names ?? []) {
      const submodule = pythonModuleFile(dir, rest ? `${rest}.${name}` : name, ctx.files);
      if (submodule) targets.push({ kind: 'file', path: submodule });
      else needsModule = true;
    }
    if (needsModule) targets.push(...found(rest ? pythonModuleFile(dir, rest, ctx.files) : ctx.files.has(join(dir, '__init__.py')) ? join(dir, '__init__.py') : undefined));
    return targets;
  }

  const roots = new Set([...ctx.pythonRoots, 'src', dirOf(from)]);
  const top = rest.split('.')[0]!;
  let internalPackage = false;
  for (const root of roots) {
    if (names && names.length > 0) {
      // `from pkg import sub`: sub may be a module of pkg.
      const submodules = names.map((name) => pythonModuleFile(root, `${rest}.${name}`, ctx.files)).filter((path): path is string => !!path);
      if (submodules.length > 0) return submodules.map((path) => ({ kind: 'file', path }));
    }
    const path = pythonModuleFile(root, rest, ctx.files);
    if (path) return [{ kind: 'file', path }];
    if (pythonModuleFile(root, top, ctx.files)) internalPackage = true;
  }
  // A module of one of the repository's own packages that we cannot see (generated, skipped) is no PyPI dependency.
  if (internalPackage) return [];
  return pypiTarget(rest.split('.')[0]!, ctx);
}

// ---------------------------------------------------------------- Go

function resolveGo(specifier: string, ctx: ResolutionContext, index: Map<string, string[]>): ImportTarget[] {
  const first = specifier.split('/')[0]!;
  if (!first.includes('.')) return []; // standard library (fmt, net/http) or a GOPATH-era relative name
  let owner: GoModule | undefined;
  for (const module of ctx.goModules) {
    if ((specifier === module.module || specifier.startsWith(`${module.module}/`)) && (!owner || module.module.length > owner.module.length)) owner = module;
  }
  if (owner) {
    const dir = inRepo(join(owner.dir, specifier.slice(owner.module.length + 1)));
    return dir === undefined ? [] : (index.get(dir) ?? []).slice(0, MAX_FILES_PER_IMPORT).map((path) => ({ kind: 'file', path }));
  }
  let module: string | undefined;
  for (const required of ctx.goRequires) {
    if ((specifier === required || specifier.startsWith(`${required}/`)) && (!module || required.length > module.length)) module = required;
  }
  if (!module) {
    // Not required by any go.mod here: github.com/owner/repo[/vN] is the usual module root.
    const parts = specifier.split('/');
    const hosted = ['github.com', 'gitlab.com', 'bitbucket.org'].includes(parts[0]!);
    const length = hosted ? (/^v\d+$/.test(parts[3] ?? '') ? 4 : 3) : parts.length;
    module = parts.slice(0, length).join('/');
  }
  return [{ kind: 'package', ecosystem: 'go', name: module }];
}

// ---------------------------------------------------------------- Java

function resolveJava(specifier: string, javaIndex: Map<string, string[]>): ImportTarget[] {
  if (/^(java|javax|jdk|sun|com\.sun|kotlin)\./.test(specifier)) return [];
  const parts = specifier.split('.');
  if (parts[parts.length - 1] === '*') {
    const suffix = parts.slice(0, -1).join('/');
    const files: string[] = [];
    for (const paths of javaIndex.values()) {
      for (const path of paths) if (dirOf(path) === suffix || dirOf(path).endsWith(`/${suffix}`)) files.push(path);
    }
    return files.slice(0, MAX_FILES_PER_IMPORT).map((path) => ({ kind: 'file', path }));
  }
  // a.b.C, a.b.C.method (static), a.b.Outer.Inner: the longest prefix that names a file.
  for (let length = parts.length; length >= 2; length--) {
    const suffix = `${parts.slice(0, length).join('/')}.java`;
    const candidates = javaIndex.get(`${parts[length - 1]}.java`) ?? [];
    const path = candidates.find((candidate) => candidate === suffix || candidate.endsWith(`/${suffix}`));
    if (path) return [{ kind: 'file', path }];
  }
  return [];
}

// ---------------------------------------------------------------- Ruby

function resolveRuby(from: string, specifier: string, ctx: ResolutionContext): ImportTarget[] {
  const withExtension = (path: string) => (path.endsWith('.rb') ? path : `${path}.rb`);
  if (specifier.startsWith('./') || specifier.startsWith('../')) {
    const path = inRepo(withExtension(join(dirOf(from), specifier)));
    return path !== undefined && ctx.files.has(path) ? [{ kind: 'file', path }] : [];
  }
  for (const root of ['lib', '']) {
    const path = join(root, withExtension(specifier));
    if (ctx.files.has(path)) return [{ kind: 'file', path }];
  }
  const gem = specifier.split('/')[0]!;
  return ctx.declared.get('gem')?.has(gem) ? [{ kind: 'package', ecosystem: 'gem', name: gem }] : [];
}

// ---------------------------------------------------------------- entry

/** Resolves many files' imports against one context; indexes are built once, on first need. */
export class ImportResolver {
  readonly #ctx: ResolutionContext;
  #goIndex: Map<string, string[]> | undefined;
  #javaIndex: Map<string, string[]> | undefined;

  constructor(ctx: ResolutionContext) {
    this.#ctx = ctx;
  }

  resolve(language: LanguageId, from: string, ref: ImportRef): ImportTarget[] {
    const ctx = this.#ctx;
    switch (language) {
      case 'typescript':
      case 'tsx':
      case 'javascript':
        return resolveJs(from, ref.specifier, ctx);
      case 'python':
        return resolvePython(from, ref, ctx);
      case 'go':
        return resolveGo(ref.specifier, ctx, (this.#goIndex ??= this.#index((path) => path.endsWith('.go') && !path.endsWith('_test.go'), dirOf)));
      case 'java':
        return resolveJava(ref.specifier, (this.#javaIndex ??= this.#index((path) => path.endsWith('.java'), (path) => path.slice(path.lastIndexOf('/') + 1))));
      case 'ruby':
        return resolveRuby(from, ref.specifier, ctx);
      default:
        return [];
    }
  }

  #index(keep: (path: string) => boolean, keyOf: (path: string) => string): Map<string, string[]> {
    const index = new Map<string, string[]>();
    for (const path of this.#ctx.files) {
      if (!keep(path)) continue;
      const key = keyOf(path);
      const list = index.get(key);
      if (list) list.push(path);
      else index.set(key, [path]);
    }
    for (const list of index.values()) list.sort();
    return index;
  }
}
