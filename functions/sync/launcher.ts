/**
 * The port through which the API starts the sync state machine: Step Functions StartExecution in
 * the cloud (STATE_MACHINE_ARN), the local state machine runner on the local stack
 * (local/state-machine-runner.ts, installed with `configureSyncLauncher` at the local edge).
 */
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { PlanInput, RemovalInput } from './payloads.ts';

export type StateMachineInput = PlanInput | RemovalInput;

export interface SyncLauncher {
  /** Starts one execution; `name` (unique, [A-Za-z0-9_-], ≤ 80 chars) makes a retried start idempotent in the cloud. */
  start(input: StateMachineInput, name?: string): Promise<{ executionId: string }>;
}

export class StepFunctionsSyncLauncher implements SyncLauncher {
  readonly #client: SFNClient;
  readonly #stateMachineArn: string;

  constructor(stateMachineArn: string, client: SFNClient = new SFNClient({})) {
    this.#stateMachineArn = stateMachineArn;
    this.#client = client;
  }

  async start(input: StateMachineInput, name?: string): Promise<{ executionId: string }> {
    const { executionArn } = await this.#client.send(
      new StartExecutionCommand({ stateMachineArn: this.#stateMachineArn, input: JSON.stringify(input), ...(name ? { name } : {}) }),
    );
    return { executionId: executionArn ?? name ?? 'unknown' };
  }
}

let configured: SyncLauncher | undefined;

export function configureSyncLauncher(launcher: SyncLauncher | undefined): void {
  configured = launcher;
}

export function syncLauncher(): SyncLauncher {
  if (configured) return configured;
  const arn = process.env.STATE_MACHINE_ARN;
  if (!arn) throw new Error('STATE_MACHINE_ARN is not set: this function cannot start syncs (grant it with SyncOrchestration.grantStartSync)');
  configured = new StepFunctionsSyncLauncher(arn);
  return configured;
}

/** An execution name from parts: only the characters Step Functions allows, at most 80. */
export const executionName = (...parts: string[]) => parts.join('-').replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80);
