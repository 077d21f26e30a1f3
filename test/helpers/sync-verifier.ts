import type { TokenVerifier, VerifyResult } from '../../auth-sidecar/jwt/verifier.js';

/** A verifier of static keys answers at once: this says so, and fails the test if it ever waits. */
export function syncVerifier(verifier: Pick<TokenVerifier, 'verify'>): { verify(token: string): VerifyResult } {
  return {
    verify(token) {
      const result = verifier.verify(token);
      if (result instanceof Promise) throw new Error('a verifier of static keys returned a promise');
      return result;
    },
  };
}
