/**
 * Helpers for acknowledging cdk-nag (v3) findings precisely. Wildcard findings are per resource,
 * `AwsSolutions-IAM5[Resource::<flattened ARN>]`, and an acknowledgement must spell the ARN the
 * way cdk-nag flattens it (intrinsics become `<AWS::Region>`, `<LogicalId.Arn>`), so it is
 * computed from the same token instead of hand-copying logical ids that change with the tree.
 */
import type { Stack } from 'aws-cdk-lib';

/** cdk-nag's flattening of a resolved CloudFormation value (its utils/flatten-cfn-reference). */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (node && typeof node === 'object') {
    const value = node as Record<string, unknown>;
    if (value['Fn::Join']) {
      const [delimiter, items] = value['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (value['Fn::Sub']) return flatten(value['Fn::Sub']);
    if (value['Fn::GetAtt']) {
      const [resource, attribute] = value['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (value['Fn::ImportValue']) return flatten(value['Fn::ImportValue']);
    if (value.Ref) return `<${flatten(value.Ref)}>`;
  }
  return JSON.stringify(node);
}

/** The id of the IAM5 finding for a wildcard resource, e.g. `AwsSolutions-IAM5[Resource::arn:...:*]`. */
export function wildcardResourceFinding(stack: Stack, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(stack.resolve(resource))}]`;
}
