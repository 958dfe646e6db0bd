/**
 * Python's definitions are found without a query (functions/code/python.ts): keywords located in
 * the text, confirmed on the tree. These tests hold it to what the former query found — on a file
 * full of traps (keywords in docstrings, comments and strings; nested, guarded and decorated
 * definitions) and on real sources from the installed Python standard library, when there is one.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Language, Parser, Query } from 'web-tree-sitter';
import { findPython } from '../../functions/code/python.ts';
import { TreeSitterExtractor } from '../../functions/code/tree-sitter.ts';

const TRICKY = `"""Module docstring: def fake(): class Fake: import fake_module; x = lambda: 0"""
from __future__ import annotations
import os, sys as system
from .models import (Invoice, Order)
from . import utils

# def commented(): pass
# class Commented: import commented_module
API_URL = "https://example.com/def/class"
Handler = lambda event: event
retries = 3
ádef = 1
MAX, MIN = 1, 2
X = Y = lambda: 0


@decorator
class Service(Base):
    """class in a docstring: def not_a_method(self): ..."""
    CONSTANT = 1
    handler = lambda self: None

    async def start(self) -> None:
        text = "def inside_string(): pass"
        def inner():
            import json
            return json
        return inner


if TYPE_CHECKING:
    def guarded(x: int) -> int: ...
else:
    def guarded(x): return x

try:
    import yaml
except ImportError:
    yaml = None

with open("f") as handle:
    def in_with(): pass

match command:
    case "go":
        def in_case(): pass


def default_args(a=lambda: 1, b="class X: pass"):
    pass


class Outer:
    class Inner:
        def method(self): pass
`;

/** The query Python's definitions and imports came from before the finder replaced it. */
const FORMER_QUERY = `
(function_definition name: (identifier) @name) @def.function
(class_definition name: (identifier) @name) @def.class
(assignment left: (identifier) @name right: (lambda)) @def.function
(module (expression_statement (assignment left: (identifier) @name) @def.const))
(import_statement) @import.stmt
(import_from_statement) @import.stmt
`;

const extractor = new TreeSitterExtractor();
let parser: Parser;
let query: Query;

beforeAll(async () => {
  await extractor.preload(['python']);
  const require = createRequire(import.meta.url);
  const grammar = await Language.load(await readFile(join(dirname(require.resolve('@vscode/tree-sitter-wasm/package.json')), 'wasm', 'tree-sitter-python.wasm')));
  parser = new Parser();
  parser.setLanguage(grammar);
  query = new Query(grammar, FORMER_QUERY);
});

afterAll(async () => {
  query.delete();
  parser.delete();
  await extractor.dispose();
});

/** What the finder and the former query each find: definitions (node range, name position, kind) and import statement lines. */
function bothWays(source: string) {
  const tree = parser.parse(source)!;
  try {
    const found = findPython(tree, source);
    const finder = {
      definitions: found.definitions.map((raw) => `${raw.start}-${raw.end}@${raw.nameNode.startIndex}:${raw.kind}`).sort(),
      importLines: [...new Set(found.imports.map((ref) => ref.line))].sort((a, b) => a - b),
    };
    const definitions: string[] = [];
    const importLines = new Set<number>();
    for (const match of query.matches(tree.rootNode)) {
      const def = match.captures.find((capture) => capture.name.startsWith('def.'));
      const name = match.captures.find((capture) => capture.name === 'name');
      const statement = match.captures.find((capture) => capture.name === 'import.stmt');
      // A module-level name not written as a constant never became a symbol (languages.ts): the finder skips it up front.
      const droppedLater = def?.name === 'def.const' && !/^[A-Z]/.test(name?.node.text ?? '');
      if (def && name && !droppedLater) definitions.push(`${def.node.startIndex}-${def.node.endIndex}@${name.node.startIndex}:${def.name.slice(4)}`);
      // The former extraction read no specifier from a `from . import` without names either; lines of statements that yield one:
      if (statement && (statement.node.type === 'import_statement' || statement.node.childForFieldName('module_name'))) importLines.add(statement.node.startPosition.row + 1);
    }
    return { finder, query: { definitions: definitions.sort(), importLines: [...importLines].sort((a, b) => a - b) } };
  } finally {
    tree.delete();
  }
}

describe('Python definitions without a query', () => {
  it('finds definitions and imports, and ignores the same words in docstrings, comments and strings', async () => {
    const { symbols, imports } = await extractor.extract('python', TRICKY);
    const names = symbols.map((symbol) => `${symbol.kind} ${symbol.qualifiedName}`);
    expect(names).toEqual([
      'const API_URL',
      'function Handler',
      'const X',
      'function X.Y',
      'class Service',
      'method Service.handler',
      'method Service.start',
      'function Service.start.inner',
      'function guarded',
      'function guarded@34',
      'function in_with',
      'function in_case',
      'function default_args',
      'class Outer',
      'class Outer.Inner',
      'method Outer.Inner.method',
    ]);
    expect(symbols.find((symbol) => symbol.name === 'start')).toMatchObject({ line: 23, signature: 'async def start(self) -> None' });
    expect(symbols.find((symbol) => symbol.name === 'Handler')).toMatchObject({ line: 10, signature: 'Handler = lambda event' });
    expect(imports).toEqual([
      { specifier: 'os', line: 3 },
      { specifier: 'sys', line: 3 },
      { specifier: '.models', line: 4, names: ['Invoice', 'Order'] },
      { specifier: '.', line: 5, names: ['utils'] },
      { specifier: 'json', line: 26 },
      { specifier: 'yaml', line: 37 },
    ]);
  });

  it('finds exactly what the former query found, on the traps', () => {
    const { finder, query: former } = bothWays(TRICKY);
    expect(finder).toEqual(former);
  });

  it('finds exactly what the former query found, on the installed standard library', async () => {
    const version = existsSync('/usr/lib') ? readdirSync('/usr/lib').find((name) => /^python3\.\d+$/.test(name)) : undefined;
    if (!version) return; // No Python on this machine: the traps above still hold the finder to the query.
    const root = join('/usr/lib', version);
    const files = ['ast.py', 'dataclasses.py', 'inspect.py', 'typing.py', 'importlib/_bootstrap_external.py', 'email/_header_value_parser.py', 'json/decoder.py', 'unittest/mock.py'];
    let compared = 0;
    for (const file of files) {
      const path = join(root, file);
      if (!existsSync(path)) continue;
      const { finder, query: former } = bothWays(await readFile(path, 'utf8'));
      expect({ file, ...finder }).toEqual({ file, ...former });
      compared++;
    }
    expect(compared).toBeGreaterThan(0);
  });
});
