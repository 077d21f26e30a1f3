/**
 * A chain link's hash, recomputed in Node by the verifier: the same bytes the sealing function
 * (chain-sql.ts, LINK_HASH) hashes, so an edited link or a link moved out of place is caught
 * without trusting anything the database computes for the link itself.
 */
import { createHash } from 'node:crypto';

export interface LinkFields {
  /** The previous link's hash (32 zero bytes before the first link). */
  prevHash: Buffer;
  /** bucket_start and bucket_end, microseconds since the epoch. */
  startUs: bigint;
  endUs: bigint;
  count: bigint;
  /** min(ts) of the link's audit events in microseconds; 0 when it has none. */
  minTsUs: bigint;
  digest: Buffer;
  securityCount: bigint;
  securityDigest: Buffer;
}

const int8 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};

export function linkHash(f: LinkFields): Buffer {
  return createHash('sha256')
    .update(f.prevHash)
    .update(int8(f.startUs))
    .update(int8(f.endUs))
    .update(int8(f.count))
    .update(int8(f.minTsUs))
    .update(f.digest)
    .update(int8(f.securityCount))
    .update(f.securityDigest)
    .digest();
}

/** The predecessor of the first link. */
export const GENESIS_HASH = Buffer.alloc(32);
