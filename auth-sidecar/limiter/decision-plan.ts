/**
 * How one decision is split into decide.lua calls. On one Redis (the `single` key layout) it is
 * one call with every key. On a Redis Cluster every call's keys must share a slot, so a
 * decision becomes one call per slot its keys fall in (common/redis-keys.ts tags them by
 * subject):
 * - the principal's slot (the consumer's, or the client ip's when anonymous) checks the
 *   consumer's revocation and ban (or the ip's ban) and counts every window counted by that
 *   subject, atomically: for the usual limits (tier and route counted by consumer, or by ip
 *   when anonymous) the whole decision is this one call, exact under any concurrency;
 * - each other subject's windows (a route counted by ip or by a header, for a consumer) are one
 *   more call in that subject's slot;
 * - a revoked token id and, for a consumer, the client ip's ban live in slots of their own and
 *   are read from the sidecar's copy of them (ban-mirror.ts) instead.
 */
import { keySlot } from '../../common/redis-slot.js';
import type { RedisKeys } from '../../common/redis-keys.js';
import type { DecisionInput, LimitWindow } from './redis-decider.js';

/** One decide.lua decision: its checks (decide.lua's letters) with their keys, and windows. */
export interface DecisionCall {
  checks: string;
  checkKeys: string[];
  windows: readonly LimitWindow[];
  /** Where each of `windows` is in the decision's windows (decide.lua answers by position); absent: the same place. */
  windowIndex?: number[];
  /** The hash slot of every key of the call (0 on one Redis, where it does not matter). */
  slot: number;
}

export interface DecisionPlan {
  calls: DecisionCall[];
  /** Keys the sidecar's copy must not hold, with the status each gives (cluster only). */
  mirrored: { jti: string | undefined; ip: string | undefined };
}

const NOTHING_MIRRORED = Object.freeze({ jti: undefined, ip: undefined });

export function planDecision(input: DecisionInput, keys: RedisKeys): DecisionPlan {
  if (keys.layout === 'single') {
    const checkKeys: string[] = [];
    if (input.jti) checkKeys.push(keys.revokedJti(input.jti));
    if (input.consumer) checkKeys.push(keys.revokedConsumer(input.consumer));
    checkKeys.push(keys.banIp(input.clientIp));
    if (input.consumer) checkKeys.push(keys.banConsumer(input.consumer));
    const checks = `${input.jti ? 'J' : ''}${input.consumer ? 'CIB' : 'I'}`;
    return { calls: [{ checks, checkKeys, windows: input.windows, slot: 0 }], mirrored: NOTHING_MIRRORED };
  }
  const principal: Required<DecisionCall> & { windows: LimitWindow[] } = input.consumer
    ? { checks: 'CB', checkKeys: [keys.revokedConsumer(input.consumer), keys.banConsumer(input.consumer)], windows: [], windowIndex: [], slot: 0 }
    : { checks: 'I', checkKeys: [keys.banIp(input.clientIp)], windows: [], windowIndex: [], slot: 0 };
  principal.slot = keySlot(principal.checkKeys[0]!);
  const bySlot = new Map<number, Required<DecisionCall> & { windows: LimitWindow[] }>([[principal.slot, principal]]);
  input.windows.forEach((window, i) => {
    const slot = keySlot(window.key);
    let call = bySlot.get(slot);
    if (!call) bySlot.set(slot, (call = { checks: '', checkKeys: [], windows: [], windowIndex: [], slot }));
    call.windows.push(window);
    call.windowIndex.push(i);
  });
  return {
    calls: [...bySlot.values()],
    mirrored: { jti: input.jti ? keys.revokedJti(input.jti) : undefined, ip: input.consumer ? keys.banIp(input.clientIp) : undefined },
  };
}
