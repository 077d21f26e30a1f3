/**
 * TLS by config: the gateway's HTTPS listener, the gateway -> sidecar hop (TLS, or mTLS with a
 * client CA), and the worker's query API. Files are PEM, paths relative to the config file.
 */
import { z } from 'zod';

const pemFile = (what: string) => z.string().min(1).describe(`Path of ${what} (PEM), relative to the config file`);

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** `gateway.tls`: an HTTPS listener on GATEWAY_HTTPS_PORT; the certificate files are re-read when they change. */
export const gatewayTlsSchema = z.strictObject({
  cert_file: pemFile('the certificate chain'),
  key_file: pemFile('its private key'),
  min_version: z.enum(TLS_VERSIONS).default('TLSv1.2').describe('Oldest protocol accepted (TLS 1.2 at least)'),
  plain_http: z
    .enum(['redirect', 'off', 'serve'])
    .default('redirect')
    .describe('The plain HTTP listener on GATEWAY_PORT: redirect (308 to https, audited https_required), off (not opened), or serve (the same routes over HTTP)'),
  redirect_port: z.number().int().min(1).max(65535).optional().describe("The HTTPS port a redirect names (default GATEWAY_HTTPS_PORT; 443 when a balancer publishes it there)"),
});

/** `sidecar.tls`: the sidecar's gRPC port over TLS; with client_ca_file, only gateways with a certificate it signed are served (mTLS). */
export const sidecarTlsSchema = z.strictObject({
  cert_file: pemFile("the sidecar's certificate chain"),
  key_file: pemFile('its private key'),
  client_ca_file: pemFile('the CA that signs the gateways\' client certificates').optional().describe('Set: mutual TLS, a gateway without a certificate signed by this CA is refused'),
});

/** `gateway.sidecar_tls`: how the gateway reaches a TLS sidecar; cert_file and key_file (its client certificate) for mTLS. */
export const sidecarClientTlsSchema = z
  .strictObject({
    ca_file: pemFile("the CA that signed the sidecar's certificate"),
    cert_file: pemFile("the gateway's client certificate chain (mTLS)").optional(),
    key_file: pemFile('its private key').optional(),
    server_name: z.string().min(1).max(253).optional().describe("The name to check the sidecar's certificate against, when it is not the address dialled"),
  })
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), { message: 'give cert_file and key_file together', path: ['cert_file'] });

/** `audit.api_tls`: the worker's query API over HTTPS. */
export const apiTlsSchema = z.strictObject({
  cert_file: pemFile('the certificate chain'),
  key_file: pemFile('its private key'),
  min_version: z.enum(TLS_VERSIONS).default('TLSv1.2'),
});
