/**
 * The investigation routes of the query API, behind the admin token like the rest of /v1:
 * GET /v1/trace/:request_id, /v1/timeline, /v1/top, /v1/after-revocation, /v1/export.
 */
import type { Express, Response } from 'express';
import type { Logger } from '../../common/logger.js';
import type { SqlClient } from '../store/sql-client.js';
import { afterRevocation } from './after-revocation.js';
import { exportEvents } from './export.js';
import { parseAfterRevocationQuery, parseExportQuery, parseTimelineQuery, parseTopQuery, parseTraceParams } from './params.js';
import { timeline } from './timeline.js';
import { top } from './top.js';
import { trace } from './trace.js';

/** A writer that resolves once the response can take more (or is gone), so a slow reader slows the reads. */
function lineWriter(res: Response): { write: (line: string) => Promise<void>; closed: () => boolean } {
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  return {
    closed: () => closed,
    write: (line) =>
      res.write(line) || closed
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          }),
  };
}

export function mountInvestigationRoutes(app: Express, sql: SqlClient, logger: Logger, now: () => number): void {
  app.get('/v1/trace/:request_id', async (req, res) => {
    const { request_id } = parseTraceParams({ ...req.params });
    if (Object.keys(req.query).length > 0) parseTraceParams({ request_id, ...req.query });
    const found = await trace(sql, request_id);
    if (!found) res.status(404).json({ error: 'no event with this request id', reason: 'not_found' });
    else res.json(found);
  });

  app.get('/v1/timeline', async (req, res) => {
    res.json(await timeline(sql, parseTimelineQuery(req.query, now)));
  });

  app.get('/v1/top', async (req, res) => {
    res.json(await top(sql, parseTopQuery(req.query, now)));
  });

  app.get('/v1/after-revocation', async (req, res) => {
    res.json(await afterRevocation(sql, parseAfterRevocationQuery(req.query)));
  });

  app.get('/v1/export', async (req, res) => {
    const query = parseExportQuery(req.query, now);
    res.status(200).set('Content-Type', 'application/x-ndjson; charset=utf-8');
    const out = lineWriter(res);
    try {
      await exportEvents(sql, query, out.write, out.closed);
      res.end();
    } catch (err) {
      // The status is sent: cutting the chunked stream short tells the client it is incomplete.
      logger.error('export failed', { code: 'audit_export_failed', err });
      res.destroy();
    }
  });
}
