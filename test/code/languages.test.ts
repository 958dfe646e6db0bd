/**
 * A small multi-language repository, built in memory as a GitHub-style tarball and analysed end
 * to end: symbols (kind, line, signature, exported, parent), DEFINES, resolved IMPORTS between
 * files, external imports to package nodes.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { analyzeRepositoryArchive, type AnalyzeRepositoryResult } from '../../functions/code/analyze.ts';
import { codeIds } from '../../functions/code/ids.ts';
import { MemorySink, repoArchive, streamOf } from './support.ts';

const repo = { source: 'github', repoKey: 'acme/payments' };
const fileId = (path: string) => codeIds.file(repo, path);
const symbolId = (path: string, name: string) => codeIds.symbol(repo, path, name);
const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split('\n').length;

const FILES: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'payments', type: 'module', imports: { '#lib/*': './src/lib/*' }, dependencies: { express: '^4.19.0' }, devDependencies: { jest: '^29.7.0' } }),
  'src/charge.ts': `import express from 'express';
import { formatMoney } from './money.js';
import type { Card } from './types';
import { log } from '#lib/log.ts';
import { readFile } from 'node:fs';
import { z } from 'zod/v4';

export interface Receipt {
  id: string;
}

/** Charges a card. */
export async function chargeCard(card: Card, amountCents: number): Promise<Receipt> {
  log(formatMoney(amountCents));
  return { id: card.number };
}

export class PaymentService {
  constructor(gateway: string) {}

  async refund(id: string): Promise<void> {}

  private audit(): void {}
}

const helper = () => 1;
export type Handler = (req: unknown) => void;
export enum Currency { EUR, USD }
`,
  'src/money.ts': `export const formatMoney = (cents: number): string => (cents / 100).toFixed(2);
export const CURRENCY = 'EUR';
const internalCounter = 0;
`,
  'src/types/index.ts': `export type Card = { number: string };
`,
  'src/lib/log.ts': `export function log(message: string): void {}
`,
  'web/widget.js': `const api = require('./api');
const React = require('react');

function render(node) {
  return api.fetchAll(node);
}

module.exports = { render };
`,
  'web/api.js': `exports.fetchAll = function (node) {
  return node;
};

class Client {
  get(path) {}
}

Client.prototype.post = function (path, body) {};
`,
  'app/__init__.py': '',
  'app/models.py': `from dataclasses import dataclass


@dataclass
class Invoice:
    amount: int

    def total(self) -> int:
        return self.amount

    def _private(self):
        pass
`,
  'app/views.py': `import os
import requests
import yaml
from .models import Invoice
from . import utils


def handler(request):
    def inner():
        return 1
    return Invoice(1).total()
`,
  'app/utils.py': `API_TOKEN = "s3cr3t-value"
retries = 3
`,
  'requirements.txt': 'requests==2.31.0\nPyYAML>=6\n',
  'go.mod': `module github.com/acme/payments

go 1.22

require (
	github.com/gin-gonic/gin v1.9.1
)
`,
  'cmd/server/main.go': `package main

import (
	"fmt"

	"github.com/acme/payments/internal/billing"
	"github.com/gin-gonic/gin/binding"
)

func main() {
	fmt.Println(billing.New(), binding.JSON)
}
`,
  'internal/billing/billing.go': `package billing

// MaxRetries bounds retries.
const MaxRetries = 3

type Invoice struct {
	Amount int
}

type Store interface {
	Save(invoice *Invoice) error
}

func (i *Invoice) Total() int {
	return i.Amount
}

func New() *Invoice { return &Invoice{} }

func helper() {}
`,
  'internal/billing/billing_test.go': `package billing

func TestNew() {}
`,
  'src/main/java/com/acme/billing/Invoice.java': `package com.acme.billing;

public class Invoice {
    public static final String CURRENCY = "EUR";

    public Invoice() {}

    public long total() {
        return 0;
    }

    private void audit() {}
}
`,
  'src/main/java/com/acme/api/Controller.java': `package com.acme.api;

import com.acme.billing.Invoice;
import java.util.List;

public class Controller {
    public Invoice get() { return new Invoice(); }
}
`,
  'src/lib.rs': `pub struct Ledger;

impl Ledger {
    pub fn post(&self) {}
}

pub trait Store {
    fn save(&self);
}

fn private_helper() {}
`,
  'lib/acme/ledger.rb': `module Acme
  class Ledger
    def post(entry)
    end
  end
end
`,
  'app.rb': `require_relative 'lib/acme/ledger'

def main
end
`,
  'src/Billing/Invoice.cs': `namespace Acme.Billing
{
    public class Invoice
    {
        public decimal Total() { return 0; }
        private void Audit() {}
    }
}
`,
  'README.md': '# payments\n',
  'assets/logo.png': '\u0089PNG\r\n\u001a\n\u0000\u0000binary',
};

let sink: MemorySink;
let result: AnalyzeRepositoryResult;

beforeAll(async () => {
  sink = new MemorySink();
  result = await analyzeRepositoryArchive({ repository: repo, archive: streamOf(await repoArchive(FILES)), graph: sink });
});

const props = (path: string, name: string) => sink.symbol(symbolId(path, name))?.props;
const imports = (path: string) =>
  sink
    .edgesOf('IMPORTS', fileId(path))
    .map((edge) => edge.to)
    .sort();

describe('analyzeRepositoryArchive on a multi-language repository', () => {
  it('reads the whole archive and parses every code file', () => {
    expect(result.complete).toBe(true);
    expect(result.warnings).toEqual([]);
    const parsed = result.files.filter((file) => file.status === 'parsed').map((file) => file.path);
    expect(parsed).toEqual(expect.arrayContaining(['src/charge.ts', 'web/api.js', 'app/views.py', 'internal/billing/billing.go', 'src/lib.rs', 'app.rb', 'src/Billing/Invoice.cs']));
    // README and the image are no code: counted, not listed.
    expect(result.files.find((file) => file.path === 'README.md')).toBeUndefined();
    expect(result.stats.ignored).toBe(2);
  });

  it('extracts TypeScript functions, classes, methods, interfaces, types and enums with lines', () => {
    const charge = FILES['src/charge.ts']!;
    expect(props('src/charge.ts', 'chargeCard')).toMatchObject({
      kind: 'function',
      line: lineOf(charge, 'export async function chargeCard'),
      signature: 'async function chargeCard(card: Card, amountCents: number): Promise<Receipt>',
      exported: true,
      language: 'typescript',
    });
    expect(props('src/charge.ts', 'chargeCard')?.line).toBe(13);
    expect(props('src/charge.ts', 'PaymentService')).toMatchObject({ kind: 'class', line: 18, exported: true });
    expect(props('src/charge.ts', 'PaymentService.refund')).toMatchObject({ kind: 'method', line: 21, parent: 'PaymentService', exported: true });
    expect(props('src/charge.ts', 'PaymentService.audit')).toMatchObject({ kind: 'method', exported: false });
    expect(props('src/charge.ts', 'Receipt')).toMatchObject({ kind: 'interface', line: 8, exported: true });
    expect(props('src/charge.ts', 'Handler')).toMatchObject({ kind: 'type', exported: true });
    expect(props('src/charge.ts', 'Currency')).toMatchObject({ kind: 'enum', exported: true });
    expect(props('src/charge.ts', 'helper')).toMatchObject({ kind: 'function', exported: false });
    expect(props('src/money.ts', 'formatMoney')).toMatchObject({ kind: 'function', line: 1, exported: true });
    expect(props('src/money.ts', 'CURRENCY')).toMatchObject({ kind: 'const', exported: true, signature: 'const CURRENCY' });
    // A module-level `const` that is neither exported nor written as a constant is no symbol.
    expect(props('src/money.ts', 'internalCounter')).toBeUndefined();
  });

  it('adds a DEFINES edge from the file to each of its symbols', () => {
    const defined = sink.edgesOf('DEFINES', fileId('src/charge.ts')).map((edge) => edge.to);
    expect(defined).toEqual(expect.arrayContaining([symbolId('src/charge.ts', 'chargeCard'), symbolId('src/charge.ts', 'PaymentService.refund')]));
    expect(sink.symbol(symbolId('src/charge.ts', 'chargeCard'))).toMatchObject({ type: 'symbol', name: 'chargeCard' });
    expect(symbolId('src/charge.ts', 'chargeCard')).toBe('github:symbol:acme/payments/src/charge.ts#chargeCard');
  });

  it('resolves TypeScript imports: .js written for .ts, index files, subpath imports, packages', () => {
    expect(imports('src/charge.ts')).toEqual(
      [fileId('src/money.ts'), fileId('src/types/index.ts'), fileId('src/lib/log.ts'), 'package:npm:express', 'package:npm:zod'].sort(),
    );
    expect(sink.edgesOf('IMPORTS', fileId('src/charge.ts')).find((edge) => edge.to === fileId('src/money.ts'))?.props).toEqual({ line: 2 });
    expect(sink.nodes.get('package:npm:express')).toEqual({ id: 'package:npm:express', type: 'package', name: 'express', props: { ecosystem: 'npm' } });
  });

  it('handles CommonJS: require, module.exports, exports.f and prototype methods', () => {
    expect(imports('web/widget.js')).toEqual([fileId('web/api.js'), 'package:npm:react'].sort());
    expect(props('web/widget.js', 'render')).toMatchObject({ kind: 'function', line: 4, exported: true });
    expect(props('web/api.js', 'fetchAll')).toMatchObject({ kind: 'function', line: 1, exported: true });
    expect(props('web/api.js', 'Client.get')).toMatchObject({ kind: 'method', line: 6, parent: 'Client' });
    expect(props('web/api.js', 'Client.post')).toMatchObject({ kind: 'method', line: 9, parent: 'Client' });
  });

  it('extracts Python classes, methods, nested functions and constants without their values', () => {
    expect(props('app/models.py', 'Invoice')).toMatchObject({ kind: 'class', line: 5, exported: true, signature: 'class Invoice' });
    expect(props('app/models.py', 'Invoice.total')).toMatchObject({ kind: 'method', line: 8, parent: 'Invoice', signature: 'def total(self) -> int', exported: true });
    expect(props('app/models.py', 'Invoice._private')).toMatchObject({ kind: 'method', exported: false });
    expect(props('app/views.py', 'handler')).toMatchObject({ kind: 'function', line: 8 });
    expect(props('app/views.py', 'handler.inner')).toMatchObject({ kind: 'function', line: 9, parent: 'handler', exported: false });
    expect(props('app/utils.py', 'API_TOKEN')).toMatchObject({ kind: 'const', line: 1, signature: 'API_TOKEN' });
    expect(JSON.stringify([...sink.nodes.values()])).not.toContain('s3cr3t');
    expect(props('app/utils.py', 'retries')).toBeUndefined();
  });

  it('resolves Python relative imports to modules and packages, and external ones to PyPI projects', () => {
    // `import yaml` is the PyYAML project the requirements declare; `os` is the standard library.
    expect(imports('app/views.py')).toEqual([fileId('app/models.py'), fileId('app/utils.py'), 'package:pypi:pyyaml', 'package:pypi:requests'].sort());
  });

  it('extracts Go functions, methods on their receiver, structs, interfaces and exported constants', () => {
    const go = 'internal/billing/billing.go';
    expect(props(go, 'MaxRetries')).toMatchObject({ kind: 'const', line: 4, exported: true, signature: 'const MaxRetries' });
    expect(props(go, 'Invoice')).toMatchObject({ kind: 'struct', line: 6, exported: true, signature: 'type Invoice struct' });
    expect(props(go, 'Store')).toMatchObject({ kind: 'interface', line: 10 });
    expect(props(go, 'Store.Save')).toMatchObject({ kind: 'method', line: 11, parent: 'Store' });
    expect(props(go, 'Invoice.Total')).toMatchObject({ kind: 'method', line: 14, parent: 'Invoice', exported: true, signature: 'func (i *Invoice) Total() int' });
    expect(props(go, 'New')).toMatchObject({ kind: 'function', line: 18, exported: true });
    expect(props(go, 'helper')).toMatchObject({ kind: 'function', exported: false });
  });

  it('resolves Go imports inside the module to the package files and others to their module', () => {
    // A Go import names a package (a folder): every non-test file of it.
    expect(imports('cmd/server/main.go')).toEqual([fileId('internal/billing/billing.go'), 'package:go:github.com/gin-gonic/gin'].sort());
  });

  it('extracts Java classes, constructors, methods and constants, and resolves imports of repository classes', () => {
    const java = 'src/main/java/com/acme/billing/Invoice.java';
    expect(props(java, 'Invoice')).toMatchObject({ kind: 'class', line: 3, exported: true });
    expect(props(java, 'Invoice.CURRENCY')).toMatchObject({ kind: 'const', line: 4, signature: 'public static final String CURRENCY' });
    expect(props(java, 'Invoice.Invoice')).toMatchObject({ kind: 'method', line: 6 });
    expect(props(java, 'Invoice.total')).toMatchObject({ kind: 'method', line: 8, exported: true });
    expect(props(java, 'Invoice.audit')).toMatchObject({ kind: 'method', exported: false });
    expect(imports('src/main/java/com/acme/api/Controller.java')).toEqual([fileId(java)]);
  });

  it('extracts Rust, Ruby and C# symbols', () => {
    expect(props('src/lib.rs', 'Ledger')).toMatchObject({ kind: 'struct', line: 1, exported: true });
    expect(props('src/lib.rs', 'Ledger.post')).toMatchObject({ kind: 'method', line: 4, parent: 'Ledger', exported: true });
    expect(props('src/lib.rs', 'Store')).toMatchObject({ kind: 'trait', line: 7 });
    expect(props('src/lib.rs', 'private_helper')).toMatchObject({ kind: 'function', exported: false });
    expect(props('lib/acme/ledger.rb', 'Acme.Ledger.post')).toMatchObject({ kind: 'method', line: 3, parent: 'Acme.Ledger' });
    expect(props('app.rb', 'main')).toMatchObject({ kind: 'function', line: 3 });
    expect(imports('app.rb')).toEqual([fileId('lib/acme/ledger.rb')]);
    expect(props('src/Billing/Invoice.cs', 'Acme.Billing.Invoice.Total')).toMatchObject({ kind: 'method', line: 5, exported: true });
    expect(props('src/Billing/Invoice.cs', 'Acme.Billing.Invoice.Audit')).toMatchObject({ exported: false });
  });

  it('keeps every symbol under the props budget with bounded signatures', () => {
    for (const node of sink.nodes.values()) {
      if (node.type !== 'symbol') continue;
      expect(String(node.props?.signature).length).toBeLessThanOrEqual(200);
    }
  });
});
