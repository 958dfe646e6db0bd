/**
 * The hosted HTTP API: an API Gateway REST API built from the route table the local dev server
 * also reads (functions/api/routes.ts): one Lambda per distinct `fn`, one method per route.
 * Every route is behind the token authorizer unless it says `public: true`.
 */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  AccessLogField,
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  IdentitySource,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  RequestAuthorizer,
  type RequestValidator,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ROUTES, type RouteDefinition } from '#api/routes.ts';
import { FunctionWithLogGroup } from './lambda-function.ts';
import type { TenantSecrets } from './secrets.ts';
import type { Storage } from './storage.ts';

export const STAGE_NAME = 'prod';
/** Service name of the API's functions in logs, traces and metrics. */
export const API_SERVICE_NAME = 'opentrace-api';
/**
 * How long API Gateway reuses an authorizer answer for the same Authorization header: a revoked
 * token keeps working for at most this long, and the authorizer runs once per token per period.
 */
export const AUTHORIZER_CACHE_TTL = Duration.minutes(1);

export interface ApiProps {
  readonly storage: Storage;
  readonly secrets: TenantSecrets;
  /** The routes to serve; tests pass their own to check how non-public routes are wired. */
  readonly routes?: readonly RouteDefinition[];
}

export class Api extends Construct {
  readonly restApi: RestApi;
  /** API handler functions by `fn` name. */
  readonly functions = new Map<string, FunctionWithLogGroup>();
  readonly accessLogGroup: LogGroup;
  #authorizer: RequestAuthorizer | undefined;
  readonly #props: ApiProps;
  readonly #requestValidator: RequestValidator;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.#props = props;
    const routes = props.routes ?? ROUTES;

    this.accessLogGroup = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH });
    this.restApi = new RestApi(this, 'RestApi', {
      restApiName: 'opentrace',
      description: 'OpenTrace integrations API',
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      // Execution and access logging need API Gateway's account-level CloudWatch role; this
      // creates it (the recommended feature flag turns that off by default). Retained, because
      // the account setting outlives the stack and other APIs in the account may rely on it.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: STAGE_NAME,
        accessLogDestination: new LogGroupLogDestination(this.accessLogGroup),
        // One JSON line per request. No headers, query strings or bodies: OAuth callbacks carry
        // codes in the query string and connection forms carry credentials in the body.
        accessLogFormat: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            extendedRequestId: AccessLogField.contextExtendedRequestId(),
            requestTime: AccessLogField.contextRequestTime(),
            sourceIp: AccessLogField.contextIdentitySourceIp(),
            userAgent: AccessLogField.contextIdentityUserAgent(),
            httpMethod: AccessLogField.contextHttpMethod(),
            resourcePath: AccessLogField.contextResourcePath(),
            status: AccessLogField.contextStatus(),
            responseLength: AccessLogField.contextResponseLength(),
            responseLatency: AccessLogField.contextResponseLatency(),
            integrationStatus: AccessLogField.contextIntegrationStatus(),
            integrationLatency: AccessLogField.contextIntegrationLatency(),
            integrationError: AccessLogField.contextIntegrationErrorMessage(),
            // The authorizer's principal is the tenant id.
            principalId: AccessLogField.contextAuthorizerPrincipalId(),
            authorizerStatus: AccessLogField.contextAuthorizerStatus(),
            authorizerLatency: AccessLogField.contextAuthorizerLatency(),
            authorizerError: AccessLogField.contextAuthorizerError(),
            errorMessage: AccessLogField.contextErrorMessage(),
            errorResponseType: AccessLogField.contextErrorResponseType(),
            xrayTraceId: AccessLogField.contextXrayTraceId(),
          }),
        ),
        // Execution logs at ERROR: access logs already record every request, so execution logs
        // only need integration and authorizer failures. Never data tracing: it would log
        // request and response bodies, credentials included.
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
        // Stage-wide ceiling well below the account's 10,000 rps, so one runaway client cannot
        // starve every other API in the account. Per-tenant limits belong in the authorizer.
        throttlingRateLimit: 100,
        throttlingBurstLimit: 200,
      },
    });

    // Checks declared required parameters and, once a method has a request model, the body.
    // Handlers still validate everything with zod; this only rejects malformed requests early.
    this.#requestValidator = this.restApi.addRequestValidator('RequestValidator', {
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    this.#addProblemJsonGatewayResponses();

    for (const fn of new Set(routes.map((route) => route.fn))) {
      // The authorizer is no route handler: serving it as one would let anyone call it directly.
      if (fn === 'authorizer') throw new Error('functions/api/authorizer.ts is the token authorizer, not a route handler');
      const handler = new FunctionWithLogGroup(this, `${pascalCase(fn)}Function`, {
        entry: `functions/api/${fn}.ts`,
        table: props.storage.table,
        serviceName: API_SERVICE_NAME,
        // Under API Gateway's 29 s integration timeout, so a slow upstream check (a connection's
        // verify call) ends as the handler's own error rather than a gateway 504.
        timeout: Duration.seconds(25),
      });
      props.storage.grantItemReadWrite(handler.function);
      props.secrets.grantTenantSecretsAccess(handler.function);
      this.functions.set(fn, handler);
    }

    for (const route of routes) {
      const handler = this.functions.get(route.fn);
      if (!handler) throw new Error(`no function for ${route.fn}`);
      const resource = this.restApi.root.resourceForPath(route.path);
      const integration = new LambdaIntegration(handler.function, { allowTestInvoke: false });
      if (route.public) {
        const method = resource.addMethod(route.method, integration, {
          authorizationType: AuthorizationType.NONE,
          requestValidator: this.#requestValidator,
        });
        const why = `${route.method} ${route.path} is public by design (routes.ts: public: true). Public routes are the health check, the OpenAPI document and OAuth callbacks, which are reached without an OpenTrace token; OAuth callbacks authenticate through their single-use state nonce instead.`;
        Validations.of(method).acknowledge({ id: 'AwsSolutions-APIG4', reason: why });
        Validations.of(method).acknowledge({ id: 'AwsSolutions-COG4', reason: why });
      } else {
        const method = resource.addMethod(route.method, integration, {
          authorizationType: AuthorizationType.CUSTOM,
          authorizer: this.#tokenAuthorizer(),
          requestValidator: this.#requestValidator,
        });
        Validations.of(method).acknowledge({
          id: 'AwsSolutions-COG4',
          reason:
            'Callers are API clients and MCP servers holding OpenTrace API tokens, not Cognito users: a Lambda REQUEST authorizer resolves the tenant from the hashed bearer token in DynamoDB.',
        });
      }
    }

    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "API Gateway's account-level CloudWatch role: AmazonAPIGatewayPushToCloudWatchLogs is the policy the API Gateway documentation prescribes for it, and it is assumable by apigateway.amazonaws.com only.",
    });
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions-APIG3',
      reason:
        "No WAFv2 web ACL yet, deliberately: every data route is token-authenticated and the stage is throttled, and AWS managed rule groups block legitimate requests until tuned against real traffic (e.g. the Common rule set's 8 KB body limit). To be added with the monitoring work.",
    });
  }

  /**
   * The token authorizer, created with the first non-public route (API Gateway refuses an
   * authorizer that no method uses). Cached per Authorization header: identical tokens get the
   * cached answer, and a request without the header is refused before the Lambda runs.
   */
  #tokenAuthorizer(): RequestAuthorizer {
    if (this.#authorizer) return this.#authorizer;
    const authorizerFunction = new FunctionWithLogGroup(this, 'TokenAuthorizerFunction', {
      entry: 'functions/api/authorizer.ts',
      table: this.#props.storage.table,
      serviceName: `${API_SERVICE_NAME}-authorizer`,
      timeout: Duration.seconds(5),
    });
    // The token lookup is a single GetItem on the token's hash: nothing else, and no index
    // (table.grant() would add `index/*`).
    authorizerFunction.function.addToRolePolicy(
      new PolicyStatement({ actions: ['dynamodb:GetItem'], resources: [this.#props.storage.table.tableArn] }),
    );
    this.#authorizer = new RequestAuthorizer(this, 'TokenAuthorizer', {
      handler: authorizerFunction.function,
      identitySources: [IdentitySource.header('Authorization')],
      resultsCacheTtl: AUTHORIZER_CACHE_TTL,
    });
    return this.#authorizer;
  }

  /**
   * Errors API Gateway answers itself (no token, denied, throttled, unknown route, malformed
   * request, gateway faults) in the application/problem+json shape the handlers use, instead of
   * API Gateway's `{"message": ...}`.
   */
  #addProblemJsonGatewayResponses(): void {
    // `messageString` is API Gateway's message as a quoted JSON string, safe to embed unquoted.
    // The catch-all types cover several statuses, so they carry no title or status of their own.
    const problem = (status?: number, title?: string) => ({
      'application/json': `{"type":"about:blank",${title ? `"title":${JSON.stringify(title)},` : ''}${status ? `"status":${status},` : ''}"detail":$context.error.messageString,"requestId":"$context.requestId"}`,
    });
    const contentType = { 'Content-Type': "'application/problem+json'" };
    const responses: [string, ResponseType, number?, string?, Record<string, string>?][] = [
      ['Unauthorized', ResponseType.UNAUTHORIZED, 401, 'Unauthorized', { 'WWW-Authenticate': "'Bearer'" }],
      ['AccessDenied', ResponseType.ACCESS_DENIED, 403, 'Forbidden'],
      ['Throttled', ResponseType.THROTTLED, 429, 'Too Many Requests'],
      // A REST API answers an unknown path or method with 403 "Missing Authentication Token";
      // no method here uses IAM auth, so that answer always means "no such route".
      ['UnknownRoute', ResponseType.MISSING_AUTHENTICATION_TOKEN, 404, 'Not Found'],
      ['Default4xx', ResponseType.DEFAULT_4XX],
      ['Default5xx', ResponseType.DEFAULT_5XX],
    ];
    for (const [id, type, status, title, extraHeaders] of responses) {
      this.restApi.addGatewayResponse(id, {
        type,
        ...(status ? { statusCode: String(status) } : {}),
        responseHeaders: { ...contentType, ...extraHeaders },
        templates: problem(status, title),
      });
    }
  }
}

/** `list-connections` → `ListConnections`, for construct ids. */
function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}
