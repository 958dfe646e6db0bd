import { describe, expect, it } from '@jest/globals';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { API_FUNCTIONS, ROUTES, type RouteDefinition } from '#api/routes.ts';
import { buildStack, methodsByRoute, PUBLIC_ONLY_ROUTES, resourcesOfType, ROUTES_WITH_PROTECTED } from './stack-fixture.ts';

const shipped = buildStack();
const withProtected = buildStack(ROUTES_WITH_PROTECTED);

/** Every method is either a public route's, with no auth, or uses the token authorizer. */
function expectAuthorization(template: Template, routes: readonly RouteDefinition[]): void {
  const methods = methodsByRoute(template);
  expect([...methods.keys()].sort()).toEqual(routes.map((route) => `${route.method} ${route.path}`).sort());
  const authorizers = Object.keys(resourcesOfType(template, 'AWS::ApiGateway::Authorizer'));
  for (const [route, method] of methods) {
    const isPublic = routes.some((candidate) => `${candidate.method} ${candidate.path}` === route && candidate.public === true);
    if (isPublic) {
      expect({ route, type: method.AuthorizationType }).toEqual({ route, type: 'NONE' });
    } else {
      expect({ route, type: method.AuthorizationType }).toEqual({ route, type: 'CUSTOM' });
      expect(authorizers).toHaveLength(1);
      expect(method.AuthorizerId).toEqual({ Ref: authorizers[0] });
    }
  }
}

describe('routes', () => {
  it('one method per route of routes.ts, at the path it gives (with the /v1 prefix)', () => {
    const methods = methodsByRoute(shipped.template);
    expect([...methods.keys()].sort()).toEqual(ROUTES.map((route) => `${route.method} ${route.path}`).sort());
    expect(methods.has('GET /v1/health')).toBe(true);
  });

  it('one Lambda per distinct fn, from functions/api/<fn>.ts', () => {
    expect([...shipped.stack.api.functions.keys()]).toEqual(API_FUNCTIONS);
    const authorizers = ROUTES.some((route) => !route.public) ? 1 : 0;
    expect(apiFunctionCount(shipped.template)).toBe(API_FUNCTIONS.length + authorizers);
    for (const fn of API_FUNCTIONS) shipped.template.hasResourceProperties('AWS::Lambda::Function', { Description: `functions/api/${fn}.ts` });
  });

  it('paths start with /v1 and never give one segment two parameter names (API Gateway rejects that at deploy time)', () => {
    const parameterAt = new Map<string, string>();
    for (const route of ROUTES) {
      expect(route.path).toMatch(/^\/v1\//);
      const segments = route.path.split('/');
      segments.forEach((segment, i) => {
        if (!segment.startsWith('{')) return;
        const parent = segments.slice(0, i).join('/');
        expect({ parent, segment: parameterAt.get(parent) ?? segment }).toEqual({ parent, segment });
        parameterAt.set(parent, segment);
      });
    }
  });

  it('the health check is public', () => {
    expect(methodsByRoute(shipped.template).get('GET /v1/health')?.AuthorizationType).toBe('NONE');
  });

  it('shipped routes: public ones have no auth, every other one the token authorizer', () => {
    expectAuthorization(shipped.template, ROUTES);
  });

  it('protected routes get the token authorizer (also checked with a minimal route table of its own)', () => {
    expectAuthorization(withProtected.template, ROUTES_WITH_PROTECTED);
    const methods = methodsByRoute(withProtected.template);
    expect(methods.get('GET /v1/connections')?.AuthorizationType).toBe('CUSTOM');
    expect(methods.get('DELETE /v1/connections/{connectionId}')?.AuthorizationType).toBe('CUSTOM');
  });

  it('the authorization check itself fails on a non-public route without the authorizer', () => {
    const claimedProtected = ROUTES.map((route) => ({ ...route, public: false }));
    expect(() => expectAuthorization(shipped.template, claimedProtected)).toThrow();
  });

  it('the authorizer is a REQUEST authorizer cached per Authorization header', () => {
    withProtected.template.resourceCountIs('AWS::ApiGateway::Authorizer', 1);
    withProtected.template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'REQUEST',
      IdentitySource: 'method.request.header.Authorization',
      AuthorizerResultTtlInSeconds: 60,
    });
    withProtected.template.hasResourceProperties('AWS::Lambda::Function', { Description: 'functions/api/authorizer.ts' });
  });

  it('no authorizer is created while every route is public (API Gateway rejects an unused one)', () => {
    buildStack(PUBLIC_ONLY_ROUTES).template.resourceCountIs('AWS::ApiGateway::Authorizer', 0);
    expect(apiFunctionCount(buildStack(PUBLIC_ONLY_ROUTES).template)).toBe(1);
  });

  it('the authorizer is never served as a route', () => {
    expect(() => buildStack([{ ...PUBLIC_ONLY_ROUTES[0]!, fn: 'authorizer' }])).toThrow(/token authorizer/);
  });

  it('every method validates requests', () => {
    const validators = Object.keys(resourcesOfType(withProtected.template, 'AWS::ApiGateway::RequestValidator'));
    expect(validators).toHaveLength(1);
    for (const method of methodsByRoute(withProtected.template).values()) expect(method.RequestValidatorId).toEqual({ Ref: validators[0] });
  });
});

describe('the prod stage', () => {
  it('is named prod, with JSON access logs, execution logs, metrics, tracing and throttling', () => {
    shipped.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"') },
      MethodSettings: [
        {
          HttpMethod: '*',
          ResourcePath: '/*',
          LoggingLevel: 'ERROR',
          MetricsEnabled: true,
          DataTraceEnabled: false,
          ThrottlingRateLimit: 100,
          ThrottlingBurstLimit: 200,
        },
      ],
    });
  });

  it('access logs never include headers, query strings or bodies', () => {
    const stage = Object.values(resourcesOfType(shipped.template, 'AWS::ApiGateway::Stage'))[0]!;
    const format = (stage.Properties!.AccessLogSetting as { Format: string }).Format;
    expect(() => JSON.parse(format)).not.toThrow();
    expect(format).not.toMatch(/requestOverride|querystring|header|\$input/i);
  });

  it('errors API Gateway answers itself are application/problem+json', () => {
    const responses = Object.values(resourcesOfType(shipped.template, 'AWS::ApiGateway::GatewayResponse')).map((response) => response.Properties!);
    expect(responses.map((response) => response.ResponseType).sort()).toEqual(
      ['ACCESS_DENIED', 'DEFAULT_4XX', 'DEFAULT_5XX', 'MISSING_AUTHENTICATION_TOKEN', 'THROTTLED', 'UNAUTHORIZED'],
    );
    for (const response of responses) {
      expect(response.ResponseParameters).toEqual(expect.objectContaining({ 'gatewayresponse.header.Content-Type': "'application/problem+json'" }));
      // Valid JSON once API Gateway substitutes its variables ($context.error.messageString is a quoted string).
      const body = (response.ResponseTemplates as Record<string, string>)['application/json']!
        .replace('$context.error.messageString', '"Unauthorized"')
        .replace('$context.requestId', 'c0ffee');
      expect(JSON.parse(body)).toEqual(expect.objectContaining({ type: 'about:blank', detail: 'Unauthorized', requestId: 'c0ffee' }));
    }
    expect(methodsByRoute(shipped.template).size).toBeGreaterThan(0);
    shipped.template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', { ResponseType: 'MISSING_AUTHENTICATION_TOKEN', StatusCode: '404' });
    shipped.template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'UNAUTHORIZED',
      StatusCode: '401',
      ResponseParameters: Match.objectLike({ 'gatewayresponse.header.WWW-Authenticate': "'Bearer'" }),
    });
  });
});

/** Lambda functions of the API construct (the stack also holds the sync functions). */
function apiFunctionCount(template: Template): number {
  return Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) => id.startsWith('Api')).length;
}
