/**
 * `anomaly`: the audit worker's detection rules and what they do (alert, or ban the subject).
 * Every rule is on by default; a rule's keys may be given partly, the rest take its defaults.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from '../duration.js';

const DURATION_MESSAGE = 'must be seconds or a duration like 90s, 15m, 24h, 7d';

/** Seconds, or `90s`, `15m`, `24h`, `7d`; parsed to whole seconds, at most 30 days. */
const duration = z
  .union([z.number(), z.string()], { error: DURATION_MESSAGE })
  .transform((value, ctx) => {
    const seconds = typeof value === 'number' ? value : parseDuration(value);
    if (seconds === undefined) ctx.addIssue({ code: 'custom', message: DURATION_MESSAGE });
    return seconds ?? z.NEVER;
  })
  .pipe(z.number().int().positive().max(30 * 86400, 'must be at most 30d'));

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const RULE_NAMES = ['auth_failure_burst', 'revoked_token_use', 'token_many_ips', 'rate_limit_storm', 'volume_spike'] as const;
export type RuleName = (typeof RULE_NAMES)[number];

interface RuleDefaults {
  threshold: number;
  window: number;
  severity: Severity;
  action: 'alert' | 'ban';
  ban_ttl?: number;
}

/** The built-in rules: what each counts is in audit-worker/anomaly/rules.ts. */
export const RULE_DEFAULTS: Record<RuleName, RuleDefaults> = {
  auth_failure_burst: { threshold: 30, window: 60, severity: 'medium', action: 'ban' },
  revoked_token_use: { threshold: 1, window: 60, severity: 'high', action: 'alert' },
  token_many_ips: { threshold: 10, window: 600, severity: 'high', action: 'ban', ban_ttl: 86400 },
  rate_limit_storm: { threshold: 100, window: 60, severity: 'medium', action: 'alert' },
  volume_spike: { threshold: 1000, window: 60, severity: 'medium', action: 'alert' },
};

function ruleSchema(defaults: RuleDefaults) {
  return z
    .strictObject({
      enabled: z.boolean().default(true).describe('Whether the rule runs'),
      threshold: z.number().int().min(1).max(1_000_000).default(defaults.threshold).describe('Matching events within `window` that raise the alert'),
      window: duration.default(defaults.window).describe('Length of the counting window (sliding, approximated from two fixed windows)'),
      severity: z.enum(SEVERITIES).default(defaults.severity).describe('Severity of the alert: low, medium, high, critical'),
      action: z.enum(['alert', 'ban']).default(defaults.action).describe('alert only, or alert and ban the subject (an ip or consumer: 403 banned; a jti: the token is revoked)'),
      ban_ttl: duration.default(defaults.ban_ttl ?? 600).describe('First ban of a subject; each repeat offence multiplies it by anomaly.ban.factor, up to anomaly.ban.max_ttl'),
      shadow: z.boolean().default(false).describe('Raise the alert marked shadow and take no action (the action it would have taken is recorded)'),
    })
    .prefault({});
}

/** An IPv4 or IPv6 address with an optional /prefix (at most 32, or 128 for IPv6). */
const cidr = z.string().refine((text) => {
  const [address = '', prefix, ...rest] = text.split('/');
  const kind = isIP(address);
  if (kind === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (kind === 4 ? 32 : 128));
}, 'must be an IP address or CIDR range such as 10.0.0.0/8 or 2001:db8::/32');

/** Where alerts are sent (README: Anomaly alerts, "Webhook"); unset url: no webhook. */
const webhookSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .refine((text) => !URL.canParse(text) || (new URL(text).username === '' && new URL(text).password === ''), 'must not carry credentials (user:password@)')
      .optional()
      .describe('URL each alert state change is POSTed to as signed JSON; unset: no webhook'),
    secret_env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
      .optional()
      .describe('Environment variable holding the HMAC-SHA256 signing secret (at least 32 bytes); required with url'),
    timeout: duration.pipe(z.number().max(300, 'must be at most 5m')).default(5).describe('How long one attempt waits for the answer'),
    max_attempts: z.number().int().min(1).max(100).default(10).describe('Attempts of one delivery before it is marked failed'),
    backoff: z
      .strictObject({
        base: duration.default(1).describe('Wait before the second attempt; each further attempt doubles it (with jitter)'),
        cap: duration.default(300).describe('Longest wait between two attempts'),
      })
      .prefault({})
      .describe('Exponential backoff between attempts: attempt n+1 waits a random time between half and all of min(cap, base × 2^(n-1))'),
  })
  .superRefine((webhook, ctx) => {
    if (webhook.url !== undefined && webhook.secret_env === undefined) {
      ctx.addIssue({ code: 'custom', message: 'required when url is set', path: ['secret_env'] });
    }
  })
  .prefault({});

export type WebhookConfig = z.output<typeof webhookSchema>;

export const anomalySchema = z
  .strictObject({
    rules: z
      .strictObject({
        auth_failure_burst: ruleSchema(RULE_DEFAULTS.auth_failure_burst).describe('Refused tokens (token_invalid, token_missing) from one client ip'),
        revoked_token_use: ruleSchema(RULE_DEFAULTS.revoked_token_use).describe('Any request presenting a revoked token (subject: its jti)'),
        token_many_ips: ruleSchema(RULE_DEFAULTS.token_many_ips).describe('One token (jti) seen from `threshold` distinct client ips within `window`: a stolen token'),
        rate_limit_storm: ruleSchema(RULE_DEFAULTS.rate_limit_storm).describe('Requests refused rate_limited for one consumer (or, unauthenticated, one client ip)'),
        volume_spike: ruleSchema(RULE_DEFAULTS.volume_spike)
          .unwrap()
          .extend({
            factor: z.number().min(1).max(1000).default(10).describe('A window counting more than factor × the consumer\'s baseline (and at least threshold) is a spike'),
            baseline: duration.default(1800).describe('Span of the moving baseline (an exponentially weighted mean of past windows)'),
          })
          .prefault({})
          .describe('A consumer\'s requests in one window far above its own moving baseline; `threshold` is the floor'),
      })
      .prefault({}),
    allow_list: z
      .strictObject({
        ips: z.array(cidr).default([]).describe('Client addresses or ranges never banned (alerts are still raised)'),
        consumers: z.array(z.string().min(1)).default([]).describe('Consumer ids (issuer:sub) never banned (alerts are still raised)'),
      })
      .prefault({}),
    ban: z
      .strictObject({
        factor: z.number().int().min(1).max(100).default(4).describe('Each repeat offence multiplies the ban ttl by this'),
        max_ttl: duration.default(7 * 86400).describe('Longest automatic ban'),
        memory: duration.default(86400).describe('How long past offences are remembered for escalation (from the last one)'),
      })
      .prefault({}),
    webhook: webhookSchema.describe('Signed JSON delivery of alert state changes (opened, banned, acked) to one URL'),
    cooldown: duration.default(600).describe('An incident of one rule and subject within this time of its last event updates the open alert instead of opening another'),
  })
  .prefault({});

export type AnomalyConfig = z.output<typeof anomalySchema>;
export type RuleConfig = AnomalyConfig['rules'][RuleName];
