/** Loads proto/ at run time with the options the committed types were generated with. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AuthProto } from '../proto/generated/auth.js';
import type { ProtoGrpcType as HealthProto } from '../proto/generated/health.js';
import { PROJECT_ROOT } from './paths.js';

const PROTO_DIR = join(PROJECT_ROOT, 'proto');
const LOADER_OPTIONS: protoLoader.Options = JSON.parse(readFileSync(join(PROTO_DIR, 'loader-options.json'), 'utf8'));

export function loadAuthProto(): AuthProto {
  const definition = protoLoader.loadSync('auth/v1/auth.proto', { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  return grpc.loadPackageDefinition(definition) as unknown as AuthProto;
}

/** grpc.health.v1, for a client of the sidecar's health service (scripts/healthcheck.ts). */
export function loadHealthProto(): HealthProto {
  const definition = protoLoader.loadSync('grpc/health/v1/health.proto', { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  return grpc.loadPackageDefinition(definition) as unknown as HealthProto;
}

export type { CheckRequest, CheckRequest__Output } from '../proto/generated/auth/v1/CheckRequest.js';
export type { CheckResponse, CheckResponse__Output } from '../proto/generated/auth/v1/CheckResponse.js';
export type { AuthServiceClient, AuthServiceHandlers } from '../proto/generated/auth/v1/AuthService.js';
export type { CheckBatch, CheckBatch__Output } from '../proto/generated/auth/v1/CheckBatch.js';
export type { CheckCall } from '../proto/generated/auth/v1/CheckCall.js';
export type { CheckResult, CheckResult__Output } from '../proto/generated/auth/v1/CheckResult.js';
export type { CheckResultBatch, CheckResultBatch__Output } from '../proto/generated/auth/v1/CheckResultBatch.js';
export type { TokenRequest, TokenRequest__Output } from '../proto/generated/auth/v1/TokenRequest.js';
export type { TokenResponse, TokenResponse__Output } from '../proto/generated/auth/v1/TokenResponse.js';
