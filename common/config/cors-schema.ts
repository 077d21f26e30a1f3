/**
 * CORS for browser callers (README: CORS): a top-level `cors` that every route inherits, and a
 * route's own `cors` (or `cors: false`). The gateway answers preflights itself and puts the
 * Access-Control-* headers on the answers to allowed origins; never an origin it was not told.
 */
import { z } from 'zod';
import { headerName as anyCaseHeaderName, httpMethod } from './fields.js';

/** `scheme://host[:port]` as a browser sends it in Origin; `*.` before the host: any subdomain. */
const ORIGIN = /^https?:\/\/(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
const headerName = anyCaseHeaderName.transform((h) => h.toLowerCase());

export const corsSchema = z
  .strictObject({
    origins: z
      .array(z.string().transform((o) => o.toLowerCase()).pipe(z.string().refine((o) => o === '*' || o === 'null' || ORIGIN.test(o), 'must be an origin like https://app.example.com (https://*.example.com for its subdomains), * or null')))
      .min(1)
      .describe('Origins allowed: exact (scheme, host and port as the browser sends them), https://*.example.com for any subdomain, * for any (not with credentials), null only if listed'),
    methods: z.array(httpMethod).min(1).default(['GET', 'HEAD', 'POST']).describe('Methods a preflight may ask for'),
    allow_headers: z.array(headerName).default([]).describe('Request headers a preflight may ask for (the CORS-safelisted ones need no listing); authorization must be listed to send a token'),
    expose_headers: z.array(headerName).default([]).describe('Response headers the page may read besides the safelisted ones'),
    credentials: z.boolean().default(false).describe('Let the browser send cookies and Authorization (Access-Control-Allow-Credentials: true)'),
    max_age: z.number().int().min(0).max(86_400).default(600).describe('Seconds a browser may cache a preflight answer'),
  })
  .refine((c) => !(c.credentials && c.origins.includes('*')), { message: 'origins * cannot go with credentials: list the origins', path: ['origins'] });

export type CorsConfig = z.output<typeof corsSchema>;
