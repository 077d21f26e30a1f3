/** The `audit` section of the config file: how the audit worker keeps its store (README: Audit store). */
import { z } from 'zod';
import { apiTlsSchema } from './tls-schema.js';

export const auditSchema = z
  .strictObject({
    retention_days: z
      .number()
      .int()
      .min(1)
      .max(36_500)
      .default(90)
      .describe(
        'Days of audit events kept: whole daily partitions whose day ended more than this many days ago are dropped (at start and hourly); an arriving event older than that is set aside as ts_past_retention',
      ),
    chain: z
      .strictObject({
        bucket_s: z.number().int().min(1).max(3600).default(10).describe('Seconds of stored_at one link of the hash chain covers'),
        margin_s: z.number().int().min(0).max(600).default(2).describe('A bucket is sealed only once it ended this long ago (guards commits still in flight)'),
        interval_s: z.number().int().min(1).max(3600).default(5).describe('How often each worker runs the sealer'),
        lag_alert_s: z
          .number()
          .int()
          .min(1)
          .max(86_400)
          .default(120)
          .describe('The chain head lagging the clock by more than this is logged at error level (audit_chain_lagging) and shown on /healthz'),
      })
      .prefault({})
      .superRefine((c, ctx) => {
        // A healthy chain lags by up to a bucket, the margin and a run's interval: an alert below that would always fire.
        const normal = c.bucket_s + c.margin_s + c.interval_s;
        if (c.lag_alert_s <= normal) ctx.addIssue({ code: 'custom', path: ['lag_alert_s'], message: `must be more than bucket_s + margin_s + interval_s (${normal}): a healthy chain lags that much` });
      })
      .describe('The hash chain sealer (README: Tamper evidence)'),
    api_tls: apiTlsSchema.optional().describe('The query API over HTTPS on AUDIT_PORT (README: TLS)'),
  })
  .prefault({});

export type AuditConfig = z.output<typeof auditSchema>;
