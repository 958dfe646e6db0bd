/**
 * The files the code analysis reads at run time instead of importing (esbuild cannot bundle
 * them): the web-tree-sitter runtime and the grammars of every language in languages.ts. A
 * connector that analyses code lists these as its `bundleFiles`; lib/lambda-function.ts copies
 * them into `<bundle>/tree-sitter/`, where tree-sitter.ts looks first (after
 * OPENTRACE_TREE_SITTER_DIR). Paths: `from` relative to the project root, `to` to the bundle.
 */
import { LANGUAGES } from './languages.ts';
import { RUNTIME_WASM } from './tree-sitter.ts';

export interface BundleFile {
  from: string;
  to: string;
}

export const TREE_SITTER_BUNDLE_DIR = 'tree-sitter';

export function treeSitterBundleFiles(): BundleFile[] {
  const grammars = [...new Set(Object.values(LANGUAGES).map((language) => language.grammar))].sort();
  return [
    { from: `node_modules/web-tree-sitter/${RUNTIME_WASM}`, to: `${TREE_SITTER_BUNDLE_DIR}/${RUNTIME_WASM}` },
    ...grammars.map((grammar) => ({ from: `node_modules/@vscode/tree-sitter-wasm/wasm/${grammar}`, to: `${TREE_SITTER_BUNDLE_DIR}/${grammar}` })),
  ];
}
