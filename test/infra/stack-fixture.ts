/**
 * Builds the stack the way `cdk synth` does (cdk.json's feature flags), minus asset bundling,
 * which the tests skip for speed: templates are identical apart from asset hashes.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readFileSync } from 'node:fs';
import type { RouteDefinition } from '#api/routes.ts';
import { OpenTraceStack } from '#lib/opentrace-stack.ts';
import { PROJECT_ROOT } from '#lib/lambda-function.ts';

const cdkJsonContext = (JSON.parse(readFileSync(`${PROJECT_ROOT}/cdk.json`, 'utf8')) as { context: Record<string, unknown> }).context;

export function buildStack(routes?: readonly RouteDefinition[]): { app: App; stack: OpenTraceStack; template: Template } {
  const app = new App({ context: { ...cdkJsonContext, 'aws:cdk:bundling-stacks': [] } });
  const stack = new OpenTraceStack(app, 'OpenTrace', routes ? { routes } : {});
  return { app, stack, template: Template.fromStack(stack) };
}

const ok = { status: 200, description: 'ok' };

/**
 * A route table of the tests' own (one public route, two protected ones), so the authorizer
 * wiring is checked whatever routes.ts happens to hold.
 */
export const ROUTES_WITH_PROTECTED: readonly RouteDefinition[] = [
  { method: 'GET', path: '/v1/health', fn: 'health', public: true, summary: 'public', success: ok },
  { method: 'GET', path: '/v1/connections', fn: 'health', summary: 'protected', success: ok },
  { method: 'DELETE', path: '/v1/connections/{connectionId}', fn: 'health', summary: 'protected', success: ok },
];

/** Only public routes: no authorizer may be created then. */
export const PUBLIC_ONLY_ROUTES: readonly RouteDefinition[] = [{ method: 'GET', path: '/v1/health', fn: 'health', public: true, summary: 'public', success: ok }];

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

export function resourcesOfType(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

const refOf = (value: unknown): string | undefined =>
  value && typeof value === 'object' && 'Ref' in value ? String((value as { Ref: unknown }).Ref) : undefined;

/** Every API Gateway method keyed `GET /v1/health`, its path rebuilt from the Resource chain. */
export function methodsByRoute(template: Template): Map<string, Record<string, unknown>> {
  const apiResources = resourcesOfType(template, 'AWS::ApiGateway::Resource');
  const pathOf = (logicalId: string | undefined): string => {
    if (!logicalId) return ''; // the root resource (Fn::GetAtt RootResourceId)
    const resource = apiResources[logicalId];
    if (!resource?.Properties) throw new Error(`unknown API resource ${logicalId}`);
    return `${pathOf(refOf(resource.Properties.ParentId))}/${String(resource.Properties.PathPart)}`;
  };
  const methods = new Map<string, Record<string, unknown>>();
  for (const method of Object.values(resourcesOfType(template, 'AWS::ApiGateway::Method'))) {
    const props = method.Properties ?? {};
    methods.set(`${String(props.HttpMethod)} ${pathOf(refOf(props.ResourceId)) || '/'}`, props);
  }
  return methods;
}

export interface PolicyStatementJson {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Sid?: string;
}

/** Every statement of every IAM policy (inline policies of roles included). */
export function allStatements(template: Template): PolicyStatementJson[] {
  const statements: PolicyStatementJson[] = [];
  for (const policy of Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))) {
    statements.push(...((policy.Properties?.PolicyDocument as { Statement: PolicyStatementJson[] }).Statement ?? []));
  }
  for (const role of Object.values(resourcesOfType(template, 'AWS::IAM::Role'))) {
    for (const inline of (role.Properties?.Policies as { PolicyDocument: { Statement: PolicyStatementJson[] } }[] | undefined) ?? []) {
      statements.push(...inline.PolicyDocument.Statement);
    }
  }
  return statements;
}

export const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
