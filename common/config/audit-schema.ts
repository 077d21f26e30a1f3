/** The `audit` section of the config file: how the audit worker keeps its store (README: Audit store). */
import { z } from 'zod';

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
  })
  .prefault({});
