/**
 * Which files of a repository archive are worth reading: language by extension, manifests by name,
 * and what is skipped before any parsing (vendored and generated trees, lock files, minified
 * bundles, binaries). Pure functions of the path and, for the content checks, the bytes.
 */
import type { LanguageId } from './types.ts';

const EXTENSIONS: Record<string, LanguageId> = {
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.tsx': 'tsx',
  '.js': 'javascript',
  '.jsx': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.py': 'python',
  '.pyi': 'python',
  '.go': 'go',
  '.java': 'java',
  '.rs': 'rust',
  '.rb': 'ruby',
  '.rake': 'ruby',
  '.cs': 'csharp',
};

/** Directory names whose whole subtree is third-party or build output. */
const SKIPPED_DIRS = new Set([
  'node_modules',
  'bower_components',
  'jspm_packages',
  'vendor',
  'third_party',
  'dist',
  'build',
  'out',
  'target',
  'coverage',
  '.git',
  '.hg',
  '.svn',
  '.next',
  '.nuxt',
  '.yarn',
  '.pnpm-store',
  '.gradle',
  '.venv',
  'venv',
  '.tox',
  '.mypy_cache',
  '__pycache__',
  'site-packages',
  'Pods',
  'obj',
]);

const LOCK_FILES = new Set([
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lockb',
  'poetry.lock',
  'Pipfile.lock',
  'uv.lock',
  'Cargo.lock',
  'go.sum',
  'Gemfile.lock',
  'composer.lock',
]);

/** Generated sources: protobuf and gRPC stubs, designer files, bundles and minified files. */
const GENERATED = [/\.min\.[cm]?js$/, /[.-]bundle\.[cm]?js$/, /\.pb\.go$/, /_pb2(_grpc)?\.pyi?$/, /\.generated\.\w+$/, /\.g\.cs$/, /\.designer\.cs$/i, /_generated\.go$/];

export type ManifestKind = 'package.json' | 'requirements.txt' | 'pyproject.toml' | 'go.mod' | 'pom.xml' | 'Cargo.toml' | 'Gemfile';

export type PathClass =
  | { kind: 'code'; language: LanguageId }
  | { kind: 'manifest'; manifest: ManifestKind }
  | { kind: 'ignored'; reason: 'vendored' | 'lock-file' | 'generated' | 'not-code' };

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

export function manifestKind(path: string): ManifestKind | undefined {
  const name = basename(path);
  switch (name) {
    case 'package.json':
    case 'pyproject.toml':
    case 'go.mod':
    case 'pom.xml':
    case 'Cargo.toml':
    case 'Gemfile':
      return name;
  }
  // requirements.txt, requirements-dev.txt, requirements/base.txt
  if (/^requirements([-_.][\w.-]+)?\.txt$/i.test(name) || /(^|\/)requirements\/[\w.-]+\.txt$/i.test(path)) return 'requirements.txt';
  return undefined;
}

export function languageOf(path: string): LanguageId | undefined {
  const name = basename(path);
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return name === 'Rakefile' ? 'ruby' : undefined;
  return EXTENSIONS[name.slice(dot).toLowerCase()];
}

export function classifyPath(path: string): PathClass {
  const segments = path.split('/');
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i]!;
    if (SKIPPED_DIRS.has(segment) || segment.endsWith('.egg-info')) return { kind: 'ignored', reason: 'vendored' };
  }
  const name = segments[segments.length - 1]!;
  if (LOCK_FILES.has(name)) return { kind: 'ignored', reason: 'lock-file' };
  const manifest = manifestKind(path);
  if (manifest) return { kind: 'manifest', manifest };
  const language = languageOf(path);
  if (!language) return { kind: 'ignored', reason: 'not-code' };
  if (GENERATED.some((pattern) => pattern.test(name))) return { kind: 'ignored', reason: 'generated' };
  return { kind: 'code', language };
}

/** Git's heuristic: a NUL byte in the first 8,000 bytes means binary. */
export function looksBinary(content: Uint8Array): boolean {
  const end = Math.min(content.length, 8000);
  for (let i = 0; i < end; i++) if (content[i] === 0) return true;
  return false;
}

/** Minified or machine-written: long average lines (bundles that escaped the name patterns). */
export function looksMinified(text: string): boolean {
  if (text.length < 4096) return false;
  let lines = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  return text.length / lines > 300;
}

/**
 * A repository path from an archive entry name, or undefined when the name is unsafe: absolute,
 * with a drive letter, a `..` segment, a control character, or nothing left after stripping the
 * archive's top-level folder (GitHub `owner-repo-sha/`, GitLab `project-ref-sha/`).
 */
export function safeRepoPath(entryName: string, stripComponents: number): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(entryName)) return undefined;
  if (entryName.startsWith('/') || entryName.startsWith('\\') || /^[A-Za-z]:/.test(entryName)) return undefined;
  const segments = entryName.split(/[/\\]/).filter((segment) => segment !== '' && segment !== '.');
  if (segments.some((segment) => segment === '..')) return undefined;
  const rest = segments.slice(stripComponents);
  return rest.length > 0 ? rest.join('/') : '';
}
