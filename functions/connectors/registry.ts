/**
 * The one place integrations are registered. Adding an integration = a folder under
 * functions/connectors/<type>/ exporting a Connector, plus one line in CONNECTORS below.
 * The catalog, the API, the CDK stack (one sync Lambda per type) and the state machine's
 * per-type routing all read this list.
 */
import type { Connector } from './types.ts';
import { awsEksConnector } from './aws-eks/index.ts';
import { githubConnector } from './github/index.ts';
import { gitlabConnector } from './gitlab/index.ts';
import { grafanaConnector } from './grafana/index.ts';
import { jaegerConnector } from './jaeger/index.ts';
import { openSearchConnector } from './opensearch/index.ts';
import { slackConnector } from './slack/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyConnector = Connector<any, any>;

const CONNECTORS: AnyConnector[] = [awsEksConnector, grafanaConnector, jaegerConnector, openSearchConnector, githubConnector, gitlabConnector, slackConnector];

const byType = new Map<string, AnyConnector>(CONNECTORS.map((connector) => [connector.type, connector]));

export function allConnectors(): AnyConnector[] {
  return [...byType.values()];
}

export function findConnector(type: string): AnyConnector | undefined {
  return byType.get(type);
}

/** Types whose connector can sync (each gets its own sync Lambda). */
export function syncableTypes(): string[] {
  return allConnectors().filter((connector) => connector.sync).map((connector) => connector.type);
}

/** For tests: adds a connector (e.g. a deliberately failing one) to this process's registry. */
export function registerConnector(connector: AnyConnector): () => void {
  byType.set(connector.type, connector);
  return () => byType.delete(connector.type);
}
