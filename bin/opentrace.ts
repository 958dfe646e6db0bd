/**
 * The CDK app: builds the stack and nothing else. cdk-nag's AwsSolutions pack runs as a policy
 * validation plugin, so `cdk synth` fails on any finding that is not acknowledged (with its
 * reason) through `Validations.of(construct).acknowledge(...)` next to the construct it concerns.
 * Warnings fail it too: cdk-nag marks its report failed whenever an unacknowledged finding is left.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OpenTraceStack } from '../lib/opentrace-stack.ts';

const app = new App();
new OpenTraceStack(app, 'OpenTrace', {
  description: 'OpenTrace integrations backend',
  // Account and region of the deploying credentials; env-agnostic when there are none (synth in CI).
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
