/** The investigation commands' calls of the audit worker's query API, and their errors. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Bad usage: exit 2 (with the usage text when `showUsage`). */
export class CliUsageError extends Error {
  constructor(message: string, readonly showUsage = true) {
    super(message);
  }
}
/** The API or the network failed: exit 1. */
export class CliApiError extends Error {}

export interface Api {
  base: string;
  token: string;
}

async function request(api: Api, path: string, method: 'GET' | 'POST' = 'GET'): Promise<Response> {
  try {
    return await fetch(`${api.base}${path}`, { method, headers: { authorization: `Bearer ${api.token}` } });
  } catch (err) {
    throw new CliApiError(`cannot reach the audit API at ${api.base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
}

/** A 400 or 404 is the operator's input (bad usage), anything else not 2xx an API error. */
async function failure(res: Response): Promise<Error> {
  const body = (await res.json().catch(() => ({}))) as { error?: unknown };
  const message = `the audit API answered ${res.status}: ${typeof body.error === 'string' ? body.error : res.statusText}`;
  return res.status === 400 || res.status === 404 ? new CliUsageError(message, false) : new CliApiError(message);
}

export async function getJson<T>(api: Api, path: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  const res = await request(api, path, method);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** Copies a streamed answer to `out` as it arrives; a slow `out` slows the reads (pipeline's backpressure). */
export async function streamTo(api: Api, path: string, out: NodeJS.WritableStream): Promise<void> {
  const res = await request(api, path);
  if (!res.ok) throw await failure(res);
  if (!res.body) return;
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), out, { end: false });
  } catch (err) {
    throw new CliApiError(`the export was cut short: ${(err as Error).message}`);
  }
}
