/**
 * Where OpenTrace's own web identity token (an OIDC ID token issued by accounts.google.com for
 * the OpenTrace client id) comes from, for `sts:AssumeRoleWithWebIdentity`.
 *
 * A port with two adapters:
 * - `fileTokenSource(path)`: reads the token from a file on every call (tokens rotate; the file
 *   is rewritten by whatever refreshes it), like the SDK's AWS_WEB_IDENTITY_TOKEN_FILE. Selected
 *   by OPENTRACE_WEB_IDENTITY_TOKEN_FILE (see docs/integrations/aws-eks.md for the cloud setup).
 * - `staticTokenSource(token)`: a fixed token, for tests and the local stack.
 * The token is a credential: it is never logged and never put in a check detail.
 */
import { readFile } from 'node:fs/promises';

export interface WebIdentityTokenSource {
  /** Where the token comes from, for messages (never the token). */
  readonly description: string;
  token(): Promise<string>;
}

export class WebIdentityTokenUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebIdentityTokenUnavailableError';
  }
}

export function staticTokenSource(token: string): WebIdentityTokenSource {
  return { description: 'a fixed token', token: async () => token };
}

export function fileTokenSource(path: string): WebIdentityTokenSource {
  return {
    description: `the token file ${path}`,
    async token() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new WebIdentityTokenUnavailableError(`OpenTrace could not read its web identity token from ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      const token = text.trim();
      if (!token) throw new WebIdentityTokenUnavailableError(`OpenTrace's web identity token file ${path} is empty`);
      return token;
    },
  };
}

/** The token source this process is configured with, or undefined when none is. */
export function tokenSourceFromEnv(env: NodeJS.ProcessEnv = process.env): WebIdentityTokenSource | undefined {
  const file = env.OPENTRACE_WEB_IDENTITY_TOKEN_FILE;
  return file ? fileTokenSource(file) : undefined;
}
