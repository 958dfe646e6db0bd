import { describe, expect, it } from '@jest/globals';
import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { API_FUNCTIONS, ROUTES } from '#api/routes.ts';
import { NODE_RUNTIME } from '#lib/lambda-function.ts';
import { allStatements, asArray, buildStack, resourcesOfType } from './stack-fixture.ts';

const { template } = buildStack();
const functions = Object.entries(resourcesOfType(template, 'AWS::Lambda::Function'));
/** API Gateway's functions (the sync functions are checked in test/sync/definition.test.ts). */
const apiFunctions = functions.filter(([id]) => id.startsWith('Api'));
const stateMachines = resourcesOfType(template, 'AWS::StepFunctions::StateMachine');
const logGroups = resourcesOfType(template, 'AWS::Logs::LogGroup');

/** The highest NODEJS_<n>_X that this aws-cdk-lib knows. */
const newestNodeRuntime = Runtime.ALL.map((runtime) => runtime.name)
  .filter((name) => /^nodejs\d+\.x$/.test(name))
  .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]))
  .at(-1);

describe('every Lambda function', () => {
  it('exists once per API handler, plus the token authorizer', () => {
    const hasProtectedRoutes = ROUTES.some((route) => !route.public);
    expect(hasProtectedRoutes).toBe(true);
    expect(apiFunctions).toHaveLength(API_FUNCTIONS.length + 1);
  });

  it('runs nodejs24.x, the newest Node.js runtime aws-cdk-lib offers', () => {
    expect(NODE_RUNTIME.name).toBe('nodejs24.x');
    expect(newestNodeRuntime).toBe('nodejs24.x');
    for (const [, fn] of functions) expect(fn.Properties!.Runtime).toBe('nodejs24.x');
  });

  it('runs on arm64 with active X-Ray tracing and a bundled ESM handler', () => {
    for (const [, fn] of functions) {
      expect(fn.Properties!.Architectures).toEqual(['arm64']);
      expect(fn.Properties!.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties!.Handler).toBe('index.handler');
    }
  });

  it('sets the shared environment', () => {
    for (const [, fn] of functions) {
      const variables = (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.NODE_OPTIONS).toBe('--enable-source-maps');
      expect(variables.POWERTOOLS_SERVICE_NAME).toEqual(expect.stringMatching(/^opentrace-/));
      expect(variables.TABLE_NAME).toEqual({ Ref: expect.stringMatching(/^StorageTable/) });
    }
  });

  it('logs as JSON to its own log group, kept for one month', () => {
    for (const [, fn] of functions) {
      const config = fn.Properties!.LoggingConfig as { LogFormat: string; LogGroup: { Ref: string } };
      expect(config.LogFormat).toBe('JSON');
      expect(logGroups[config.LogGroup.Ref]?.Properties!.RetentionInDays).toBe(30);
    }
  });

  it('has a timeout below API Gateway\'s 29 s integration limit', () => {
    for (const [, fn] of apiFunctions) expect(fn.Properties!.Timeout).toBeLessThan(29);
  });
});

describe('log groups and roles', () => {
  it('every log group (functions, API access logs, state machine) expires after one month', () => {
    expect(Object.keys(logGroups).length).toBe(functions.length + 1 + Object.keys(stateMachines).length);
    for (const logGroup of Object.values(logGroups)) expect(logGroup.Properties!.RetentionInDays).toBe(30);
  });

  it('function roles carry no AWS managed policy (their log access is their own log group)', () => {
    const roles = resourcesOfType(template, 'AWS::IAM::Role');
    const functionRoles = Object.entries(roles).filter(([id]) => id.includes('Function'));
    expect(functionRoles).toHaveLength(functions.length);
    for (const [, role] of functionRoles) expect(role.Properties!.ManagedPolicyArns).toBeUndefined();
  });

  it('grant "*" resources to X-Ray only, and to the state machine\'s log delivery (neither supports resource-level permissions)', () => {
    const allowed = new Set([
      'xray:PutTelemetryRecords', 'xray:PutTraceSegments', 'xray:GetSamplingRules', 'xray:GetSamplingTargets',
      'logs:CreateLogDelivery', 'logs:DeleteLogDelivery', 'logs:DescribeLogGroups', 'logs:DescribeResourcePolicies',
      'logs:GetLogDelivery', 'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:UpdateLogDelivery',
    ]);
    for (const statement of allStatements(template)) {
      if (asArray(statement.Resource).includes('*')) {
        for (const action of asArray(statement.Action)) expect(allowed).toContain(action);
      }
    }
  });
});
