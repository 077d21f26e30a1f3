/**
 * The investigation API: `GET /v1/events`, `/v1/alerts`, `/v1/security-events`, `/v1/verify` behind the admin
 * token, `GET /healthz` open.
 * Built without listening, so tests bind 127.0.0.1:0 and main.ts binds the configured port.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../common/logger.js';
import { EventFilterError, parseEventFilter } from './event-filter.js';
import type { EventStore } from './store/event-store.js';
import { alertId, parseAlertFilter } from './anomaly/alert-filter.js';
import type { AlertStore } from './anomaly/alert-store.js';
import { parseSecurityEventFilter } from './security-event-filter.js';
import type { SecurityEventStore } from './store/security-event-store.js';
import type { SqlClient } from './store/sql-client.js';
import { adminQueryEvent } from './investigation/admin-query-audit.js';
import { mergedEvents } from './investigation/merged-events.js';
import { mountInvestigationRoutes } from './investigation/routes.js';
import { parseVerifyParams } from './chain/verify-params.js';
import type { VerifyOptions, VerifyReport } from './chain/verifier.js';

export interface QueryApiDeps {
  store: Pick<EventStore, 'query'>;
  /** Unset: /v1/alerts answers 404 (tests of the events API alone). */
  alerts?: Pick<AlertStore, 'query' | 'ack'>;
  /** Unset: /v1/security-events answers 404 (tests of the other routes alone). */
  security?: Pick<SecurityEventStore, 'query'>;
  /** The store's client for the investigation routes (trace, timeline, top, after-revocation, export) and events of kind security|all. Unset: those answer 404. */
  investigation?: SqlClient;
  /** Set: each authorized /v1 call is stored first as an `admin_query` security event. */
  auditQueries?: Pick<SecurityEventStore, 'insert'>;
  /** Walks the hash chain (chain/verifier.ts); unset: /v1/verify answers 404. */
  verify?: (options: VerifyOptions) => Promise<VerifyReport>;
  /** Unset: every /v1 call answers 503 admin_disabled. */
  adminToken: string | undefined;
  logger: Logger;
  now?: () => number;
  /** Fields /healthz adds to its status: the worker's counters and the count of failed jobs. */
  health?: () => Record<string, unknown>;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Constant-time comparison; hashing first gives both sides the same length. */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer (\S+)$/i.exec(header ?? '');
  const presented = sha256(match?.[1] ?? '');
  return timingSafeEqual(presented, expected) && match !== null;
}

export function buildQueryApi({ store, alerts, security, investigation, auditQueries, verify, adminToken, logger, now = Date.now, health = () => ({}) }: QueryApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  const expected = adminToken ? sha256(adminToken) : undefined;

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', ...health() });
  });

  app.use('/v1', async (req, res, next) => {
    if (!expected) {
      res.status(503).json({ error: 'the admin API is disabled: ADMIN_TOKEN is not set', reason: 'admin_disabled' });
      return;
    }
    if (!bearerMatches(req.get('authorization'), expected)) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'admin token required', reason: 'unauthorized' });
      return;
    }
    if (auditQueries && adminToken) {
      const [path = '', query = ''] = req.originalUrl.split(/\?(.*)/s);
      await auditQueries.insert([adminQueryEvent(adminToken, { method: req.method, path, query }, now)]);
    }
    next();
  });

  app.get('/v1/events', async (req, res) => {
    const filter = parseEventFilter(req.query, now);
    if (filter.kind === 'security' || filter.kind === 'all') {
      if (!investigation) throw new EventFilterError('kind: only request events are served here');
      res.json(await mergedEvents(investigation, store, filter));
      return;
    }
    res.json(await store.query(filter));
  });

  if (investigation) mountInvestigationRoutes(app, investigation, logger, now);

  if (alerts) {
    app.get('/v1/alerts', async (req, res) => {
      res.json({ alerts: await alerts.query(parseAlertFilter(req.query, now)) });
    });
    app.post('/v1/alerts/:id/ack', async (req, res) => {
      if (!alertId.safeParse(req.params.id).success) throw new EventFilterError('id: must be an alert id (a UUID)');
      const alert = await alerts.ack(req.params.id);
      if (!alert) res.status(404).json({ error: 'no alert with this id', reason: 'not_found' });
      else res.json(alert);
    });
  }

  if (security) {
    app.get('/v1/security-events', async (req, res) => {
      res.json({ events: await security.query(parseSecurityEventFilter(req.query, now)) });
    });
  }

  if (verify) {
    // 200 whether intact or broken: the answer is the report (status, first broken link).
    app.get('/v1/verify', async (req, res) => {
      res.json(await verify(parseVerifyParams(req.query, now)));
    });
  }

  app.use('/v1', (_req, res) => {
    res.status(404).json({ error: 'not found', reason: 'not_found' });
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof EventFilterError) {
      res.status(400).json({ error: err.message, reason: 'bad_request' });
      return;
    }
    logger.error('query failed', { code: 'audit_query_failed', path: req.path, err });
    res.status(500).json({ error: 'internal error', reason: 'internal' });
  });

  return app;
}
