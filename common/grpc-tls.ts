/**
 * The gateway -> sidecar hop's credentials from the config (README: TLS): plaintext without
 * `sidecar.tls`; TLS with it; mutual TLS when it names a client CA, the gateway then presenting
 * its own certificate (`gateway.sidecar_tls`). Read once at start; a file that cannot be read
 * stops the process with the config key named.
 */
import * as grpc from '@grpc/grpc-js';
import type { GatewayConfig } from './config/schema.js';
import { readPem } from './tls-files.js';

export function sidecarServerCredentials(config: GatewayConfig, configFile: string): grpc.ServerCredentials {
  const tls = config.sidecar.tls;
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const clientCa = tls.client_ca_file === undefined ? null : readPem(configFile, 'sidecar.tls.client_ca_file', tls.client_ca_file);
  const pair = { cert_chain: readPem(configFile, 'sidecar.tls.cert_file', tls.cert_file), private_key: readPem(configFile, 'sidecar.tls.key_file', tls.key_file) };
  // checkClientCertificate: a handshake without a certificate the CA signed fails.
  return grpc.ServerCredentials.createSsl(clientCa, [pair], clientCa !== null);
}

export function sidecarChannel(config: GatewayConfig, configFile: string): { credentials?: grpc.ChannelCredentials; channelOptions?: grpc.ChannelOptions } {
  const tls = config.gateway.sidecar_tls;
  if (!tls) return {};
  const ca = readPem(configFile, 'gateway.sidecar_tls.ca_file', tls.ca_file);
  const key = tls.key_file === undefined ? null : readPem(configFile, 'gateway.sidecar_tls.key_file', tls.key_file);
  const cert = tls.cert_file === undefined ? null : readPem(configFile, 'gateway.sidecar_tls.cert_file', tls.cert_file);
  return {
    credentials: grpc.credentials.createSsl(ca, key, cert),
    ...(tls.server_name === undefined ? {} : { channelOptions: { 'grpc.ssl_target_name_override': tls.server_name, 'grpc.default_authority': tls.server_name } }),
  };
}
