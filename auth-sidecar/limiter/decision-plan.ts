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
  windows: LimitWindow[];
  /** Where each of `windows` is in the decision's windows (decide.lua answers by position). */
  windowIndex: number[];
  /** The hash slot of every key of the call (0 on one Redis, where it does not matter). */
  slot: number;
}

export interface DecisionPlan {
  calls: DecisionCall[];
  /** Keys the sidecar's copy must not hold, with the status each gives (cluster only). */
  mirrored: { jti: string | undefined; ip: string | undefined };
}

export function planDecision(input: DecisionInput, keys: RedisKeys): DecisionPlan {
  const windowIndex = input.windows.map((_, i) => i);
  if (keys.layout === 'single') {
    const checks: [string, string][] = [];
    if (input.jti) checks.push(['J', keys.revokedJti(input.jti)]);
    if (input.consumer) checks.push(['C', keys.revokedConsumer(input.consumer)]);
    checks.push(['I', keys.banIp(input.clientIp)]);
    if (input.consumer) checks.push(['B', keys.banConsumer(input.consumer)]);
    const call = { checks: checks.map(([c]) => c).join(''), checkKeys: checks.map(([, k]) => k), windows: [...input.windows], windowIndex, slot: 0 };
    return { calls: [call], mirrored: { jti: undefined, ip: undefined } };
  }
  const principal: DecisionCall = input.consumer
    ? { checks: 'CB', checkKeys: [keys.revokedConsumer(input.consumer), keys.banConsumer(input.consumer)], windows: [], windowIndex: [], slot: 0 }
    : { checks: 'I', checkKeys: [keys.banIp(input.clientIp)], windows: [], windowIndex: [], slot: 0 };
  principal.slot = keySlot(principal.checkKeys[0]!);
  const bySlot = new Map<number, DecisionCall>([[principal.slot, principal]]);
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
