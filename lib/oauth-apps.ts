/**
 * OpenTrace's own OAuth applications (GitHub App, GitLab.com application, Slack app): one Secrets
 * Manager secret holding `{ GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GITLAB_CLIENT_ID, … }`, read
 * by functions/oauth/apps.ts at cold start (OAUTH_APPS_SECRET_ARN), so app secrets never sit in a
 * Lambda environment. Operators fill it after the first deploy:
 *   aws secretsmanager put-secret-value --secret-id <OAuthAppsSecretArn> --secret-string file://apps.json
 * The settings the OAuth callbacks need come from CDK context:
 *   opentrace:apiUrl                 the public API base URL OAuth redirect URIs are built on
 *   opentrace:allowedReturnOrigins   comma-separated origins a returnUrl may point at (the UI)
 */
import { Aws, Validations } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { STAGE_NAME } from './api.ts';

export class OAuthApps extends Construct {
  readonly secret: Secret;
  readonly #environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: { restApi: RestApi }) {
    super(scope, id);
    this.secret = new Secret(this, 'Secret', {
      description: 'OpenTrace OAuth applications: GITHUB_/GITLAB_/SLACK_ CLIENT_ID and CLIENT_SECRET',
      secretObjectValue: {},
    });
    Validations.of(this.secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'OAuth client secrets are issued by GitHub, GitLab and Slack and rotated there by an operator; Secrets Manager cannot rotate them.',
    });
    const apiUrl = (this.node.tryGetContext('opentrace:apiUrl') as string | undefined) ?? `https://${props.restApi.restApiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${STAGE_NAME}`;
    const origins = this.node.tryGetContext('opentrace:allowedReturnOrigins') as string | undefined;
    this.#environment = {
      OAUTH_APPS_SECRET_ARN: this.secret.secretArn,
      OPENTRACE_API_URL: apiUrl,
      // Without configured origins no returnUrl is accepted (callbacks answer JSON); never localhost in the cloud.
      OPENTRACE_ALLOWED_RETURN_ORIGINS: origins ?? 'https://app.opentrace.invalid',
    };
  }

  /** Lets a function use the apps (authorize, callback, token refresh). */
  grantUse(fn: LambdaFunction): void {
    this.secret.grantRead(fn);
    for (const [name, value] of Object.entries(this.#environment)) fn.addEnvironment(name, value);
  }
}
