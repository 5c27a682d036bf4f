/**
 * What the rollout service refuses, in its own terms: `invalid` (the request names something that
 * cannot be rolled out), `not-found`, `conflict` (the rollout's state does not allow the action).
 * Only routes.ts turns these into HTTP.
 */
export class RolloutError extends Error {
  constructor(
    readonly kind: 'invalid' | 'not-found' | 'conflict',
    message: string,
    /** The request field an `invalid` error concerns. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RolloutError';
  }
}
