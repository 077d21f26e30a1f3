import { randomBytes, randomUUID } from 'node:crypto';
import type { AuditEvent } from '../../common/audit-event.js';

/** A valid audit event (a denied, revoked-token request by default); override any field. */
export function auditEvent(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    event_id: randomUUID(),
    ts: new Date().toISOString(),
    request_id: randomUUID(),
    gateway_id: 'gw-test-1',
    route: 'users',
    method: 'GET',
    path: '/users/42?expand=orders',
    status: 401,
    decision: 'deny',
    reason: 'token_revoked',
    detail: null,
    sub: 'alice',
    consumer: 'local:alice',
    jti: randomUUID(),
    token_iat: null,
    client_ip: '203.0.113.7',
    user_agent: 'curl/8.5.0',
    latency_ms: 1.234567,
    upstream_status: null,
    bytes_out: 87,
    upstream_target: null,
    upstream_tries: 0,
    bytes_in: null,
    rate_limit: { limit: 'tier:free:minute', window: 'minute', max: 100, remaining: 41, reset_s: 17 },
    fail_open: false,
    shadow: false,
    trace_id: randomBytes(16).toString('hex'),
    config_hash: '0123456789abcdef',
    truncated: [],
    ...overrides,
  };
}

/** `count` events one second apart, newest first from `start`, sharing `overrides`. */
export function auditEvents(count: number, overrides: Partial<AuditEvent> = {}, start = Date.now()): AuditEvent[] {
  return Array.from({ length: count }, (_, i) => auditEvent({ ts: new Date(start - i * 1000).toISOString(), ...overrides }));
}
