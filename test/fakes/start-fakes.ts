/**
 * Starts the upstream fakes on fixed loopback ports for the README walkthrough and manual tries
 * against the local stack (`npm start`, where OPENTRACE_ALLOW_PRIVATE_NETWORKS=true):
 *
 *   npm run fakes                  # all of them
 *   npm run fakes -- grafana jaeger   # only those (names as in FAKES below)
 *
 * It prints each fake's URL, the credentials it accepts and a ready `POST /v1/connections` body,
 * then runs until Ctrl-C. To add a fake: one entry in FAKES.
 */
import { DEFAULT_GRAFANA_TOKEN, startGrafanaFake } from './grafana.ts';
import { startJaegerFake } from './jaeger.ts';
import { DEMO_ROLE_ARN, startEksFakes } from './aws.ts';
import { DEFAULT_OPENSEARCH_API_KEY, DEFAULT_OPENSEARCH_PASSWORD, DEFAULT_OPENSEARCH_USERNAME, startOpenSearchFake } from './opensearch.ts';
import { DEFAULT_GITHUB_CLIENT_ID, DEFAULT_GITHUB_CLIENT_SECRET, startGitHubFake } from './github.ts';
import { DEFAULT_GITLAB_CLIENT_ID, DEFAULT_GITLAB_CLIENT_SECRET, startGitLabFake } from './gitlab.ts';
import { DEFAULT_SLACK_CLIENT_ID, DEFAULT_SLACK_CLIENT_SECRET, startSlackFake } from './slack.ts';

interface StartedFake {
  /** Lines to print under the fake's name (URL, credentials, a connect body). */
  lines: string[];
  close(): Promise<void> | void;
}

interface FakeEntry {
  name: string;
  start(): Promise<StartedFake>;
}

const HOST = '127.0.0.1';

const connectBody = (body: unknown) => `connect body: ${JSON.stringify(body)}`;
const envLine = (env: Record<string, string>) => `env:   ${Object.entries(env).map(([name, value]) => `${name}=${value}`).join(' ')}`;

export const FAKES: FakeEntry[] = [
  {
    name: 'grafana',
    async start() {
      const fake = await startGrafanaFake({ host: HOST, port: 3101 });
      return {
        close: () => fake.close(),
        lines: [`url:   ${fake.url}`, `token: ${DEFAULT_GRAFANA_TOKEN}`, connectBody({ type: 'grafana', name: 'Grafana (fake)', config: { url: fake.url }, credentials: { token: DEFAULT_GRAFANA_TOKEN } })],
      };
    },
  },
  {
    name: 'jaeger',
    async start() {
      const fake = await startJaegerFake({ host: HOST, port: 3102, grpc: 'v3', grpcPort: 3103 });
      return {
        close: () => fake.close(),
        lines: [
          `http:  ${fake.url}  (api_v3 + v1)`,
          `grpc:  ${fake.grpcUrl}  (jaeger.api_v3.QueryService; plaintext, so grpc://)`,
          'auth:  none required',
          `traces: ${fake.traceIds.join(', ')} (services frontend, checkout, payments, redis; the second one has an error)`,
          connectBody({ type: 'jaeger', name: 'Jaeger (fake, HTTP)', config: { url: fake.url, protocol: 'http' }, credentials: {} }),
          connectBody({ type: 'jaeger', name: 'Jaeger (fake, gRPC)', config: { url: fake.grpcUrl, protocol: 'grpc' }, credentials: {} }),
        ],
      };
    },
  },
  {
    name: 'opensearch',
    async start() {
      const fake = await startOpenSearchFake({ host: HOST, port: 3104 });
      return {
        close: () => fake.close(),
        lines: [
          `url:      ${fake.url}`,
          `basic:    ${DEFAULT_OPENSEARCH_USERNAME} / ${DEFAULT_OPENSEARCH_PASSWORD}`,
          `api key:  ${DEFAULT_OPENSEARCH_API_KEY}`,
          'indices:  logs-app-<yesterday>, logs-app-<today>, logs-nginx-<today>, metrics-2024',
          connectBody({ type: 'opensearch', name: 'OpenSearch (fake)', config: { url: fake.url, indexPatterns: ['logs-*'] }, credentials: { username: DEFAULT_OPENSEARCH_USERNAME, password: DEFAULT_OPENSEARCH_PASSWORD } }),
        ],
      };
    },
  },
  {
    name: 'aws-eks',
    async start() {
      const fakes = await startEksFakes({ host: HOST, stsPort: 3105, eksPort: 3106, kubePort: 3107 });
      const env = Object.entries({ ...fakes.env, AWS_ACCESS_KEY_ID: 'local-access-key', AWS_SECRET_ACCESS_KEY: 'local-secret-key' }).map(([k, v]) => `${k}=${v}`);
      return {
        close: () => fakes.close(),
        lines: [
          `sts:   ${fakes.sts.url}   eks: ${fakes.eks.url}   kubernetes: ${fakes.kube.url}`,
          `start the local stack with: ${env.join(' ')} npm start`,
          `role:  ${DEMO_ROLE_ARN}; clusters prod-eu (eu-west-1), prod-us (us-east-1), no-access (eu-west-1: no access entry, 403)`,
          connectBody({ type: 'aws-eks', name: 'EKS (fake)', config: { roleArn: DEMO_ROLE_ARN, clusters: [{ name: 'prod-eu', region: 'eu-west-1' }] }, credentials: {} }),
        ],
      };
    },
  },
  {
    name: 'github',
    async start() {
      const fake = await startGitHubFake({ host: HOST, port: 3111 });
      // Something to sync: files in TypeScript and Python, a history, branches, issues and pull requests.
      fake.generate({ repos: ['acme/payments', 'acme/checkout', 'acme/infra'], files: 40, commits: 30, issues: 8, pulls: 4, seed: 1 });
      return {
        close: () => fake.close(),
        lines: [
          `url:   ${fake.url}  (web flow and REST API; user octocat, the app installed on org acme: acme/payments, acme/checkout, acme/infra, each with generated code, history, issues and PRs to sync)`,
          envLine({ GITHUB_URL: fake.url, GITHUB_API_URL: fake.url, GITHUB_CLIENT_ID: DEFAULT_GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET: DEFAULT_GITHUB_CLIENT_SECRET }),
          'connect: POST /v1/integrations/github/authorize, open its authorizeUrl (the fake approves at once), follow the redirect (docs/integrations/github.md)',
        ],
      };
    },
  },
  {
    name: 'gitlab',
    async start() {
      const fake = await startGitLabFake({ host: HOST, port: 3112 });
      return {
        close: () => fake.close(),
        lines: [
          `url:   ${fake.url}  (OAuth with PKCE and REST v4; user jdoe, member of acme/payments, acme/checkout, acme/platform/deploy)`,
          envLine({ GITLAB_URL: fake.url, GITLAB_CLIENT_ID: DEFAULT_GITLAB_CLIENT_ID, GITLAB_CLIENT_SECRET: DEFAULT_GITLAB_CLIENT_SECRET }),
          'connect: POST /v1/integrations/gitlab/authorize (docs/integrations/gitlab.md)',
        ],
      };
    },
  },
  {
    name: 'slack',
    async start() {
      const fake = await startSlackFake({ host: HOST, port: 3113 });
      return {
        close: () => fake.close(),
        lines: [
          `url:   ${fake.url}  (OAuth v2 with token rotation and the Web API under /api/; workspace Acme Corp, #alerts picked on the consent screen)`,
          envLine({ SLACK_URL: fake.url, SLACK_CLIENT_ID: DEFAULT_SLACK_CLIENT_ID, SLACK_CLIENT_SECRET: DEFAULT_SLACK_CLIENT_SECRET }),
          'connect: POST /v1/integrations/slack/authorize { "channels": ["#general"] } (docs/integrations/slack.md)',
        ],
      };
    },
  },
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).map((name) => name.toLowerCase());
  const unknown = wanted.filter((name) => !FAKES.some((fake) => fake.name === name));
  if (unknown.length) {
    console.error(`Unknown fake(s): ${unknown.join(', ')}. Known: ${FAKES.map((fake) => fake.name).join(', ')}.`);
    process.exit(2);
  }
  const selected = wanted.length ? FAKES.filter((fake) => wanted.includes(fake.name)) : FAKES;
  const started: StartedFake[] = [];
  const stop = async () => {
    await Promise.allSettled(started.map((fake) => fake.close()));
  };

  for (const entry of selected) {
    try {
      const fake = await entry.start();
      started.push(fake);
      console.log(`\n${entry.name}`);
      for (const line of fake.lines) console.log(`  ${line}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      console.error(`\nCould not start the ${entry.name} fake: ${code === 'EADDRINUSE' ? 'its port is in use (is `npm run fakes` already running?)' : (error as Error).message}`);
      await stop();
      process.exit(1);
    }
  }
  console.log('\nThe local stack accepts these loopback URLs (OPENTRACE_ALLOW_PRIVATE_NETWORKS=true). Ctrl-C stops the fakes.');

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void stop().then(() => process.exit(0));
    });
  }
}

await main();
