/** Code symbols and dependencies for repositories: the public surface the GitHub/GitLab sync uses. */
export { analyzeRepositoryArchive, formatWarnings, gitBlobSha, CODE_GRAPH_KINDS } from './analyze.ts';
export type { AnalyzeRepositoryInput, AnalyzeRepositoryResult, AnalyzeStats, SymbolExtractor } from './analyze.ts';
export { DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits, type ArchiveSource } from './archive.ts';
export { codeIds, type RepositoryRef } from './ids.ts';
export { TreeSitterExtractor, sharedExtractor } from './tree-sitter.ts';
export { WorkerPoolExtractor, defaultExtractor } from './worker-pool.ts';
export type { CodeSymbol, CodeWarning, FileResult, LanguageId, SymbolKind } from './types.ts';
