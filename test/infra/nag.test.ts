/**
 * cdk-nag's AwsSolutions pack over the stack: `cdk synth` runs the same checks as a validation
 * plugin (bin/opentrace.ts) and fails on any finding; here they run directly so a failure names
 * the rule and construct at once.
 */
import { describe, expect, it } from '@jest/globals';
import { Validations } from 'aws-cdk-lib';
import { Table, AttributeType } from 'aws-cdk-lib/aws-dynamodb';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildStack, ROUTES_WITH_PROTECTED } from './stack-fixture.ts';

const summary = (report: ReturnType<AwsSolutionsChecks['validateScope']>) =>
  report.violations.map((violation) => `${violation.severity} ${violation.ruleName} at ${violation.violatingResources.map((resource) => resource.constructPath).join(', ')}`);

describe('AwsSolutions checks', () => {
  it('find nothing unacknowledged in the shipped stack (errors and warnings alike)', () => {
    const { app } = buildStack();
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(summary(report)).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('find nothing unacknowledged once protected routes and the authorizer exist', () => {
    const { app } = buildStack(ROUTES_WITH_PROTECTED);
    expect(summary(new AwsSolutionsChecks(app).validateScope(app))).toEqual([]);
  });

  it('do report an unacknowledged finding (the checks are live, not silenced wholesale)', () => {
    const { app, stack } = buildStack();
    new Table(stack, 'UnsafeTable', { partitionKey: { name: 'id', type: AttributeType.STRING } });
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.success).toBe(false);
    // A warning-level rule: warnings fail synth too.
    expect(summary(report)).toEqual(['warning AwsSolutions-DDB3 at OpenTrace/UnsafeTable/Resource']);
  });

  it('every acknowledgement names one rule and gives a concrete reason', () => {
    const { app } = buildStack(ROUTES_WITH_PROTECTED);
    const acknowledgements = app.node
      .findAll()
      .flatMap((construct) => construct.node.metadata.filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((entry) => Object.entries(entry.data as Record<string, string>));
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const [id, reason] of acknowledgements) {
      expect(id).toMatch(/AwsSolutions-[A-Z]+\d+/);
      expect(reason.length).toBeGreaterThan(60);
    }
  });
});
