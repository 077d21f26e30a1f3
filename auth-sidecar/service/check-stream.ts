import type * as grpc from '@grpc/grpc-js';
import { traceIdOf } from './decision-span.js';
import type { Logger } from '../../common/logger.js';
import type { CheckBatch__Output, CheckResult, CheckResultBatch } from '../../common/proto.js';
import { BatchAge } from './batch-age.js';
import type { CheckService } from './check-service.js';

/**
 * Serves one CheckStream: decides every call of each incoming batch concurrently and sends the
 * results that are ready as one message per event-loop turn. Half-closes once the client has
 * half-closed and every decision is sent.
 */
export function serveCheckStream(checks: Pick<CheckService, 'check'>, logger: Logger) {
  return (call: grpc.ServerDuplexStream<CheckBatch__Output, CheckResultBatch>): void => {
    let ready: CheckResult[] = [];
    let flushScheduled = false;
    let inFlight = 0;
    let clientDone = false;
    const age = new BatchAge();

    const flush = (): void => {
      flushScheduled = false;
      if (ready.length > 0 && !call.cancelled) call.write({ results: ready });
      ready = [];
      if (clientDone && inFlight === 0) call.end();
    };
    const reply = (result: CheckResult): void => {
      inFlight--;
      ready.push(result);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };

    call.on('data', (batch: CheckBatch__Output) => {
      // A batch that waited (the sidecar stopped or starved) has less of its deadline left: the
      // checks the gateway answered 503 meanwhile are not decided, and not counted, on the thaw.
      const waitedMs = age.ageMs(batch.sent_ms);
      for (const { id, request } of batch.calls) {
        inFlight++;
        if (!request) {
          reply({ id, error: 'call without a request' });
          continue;
        }
        checks.check(request, waitedMs).then(
          (response) => reply({ id, response }),
          (err: Error) => {
            logger.error('check failed', { request_id: request.request_id, trace_id: traceIdOf(request), error: err.message });
            reply({ id, error: 'check failed' });
          },
        );
      }
    });
    call.on('end', () => {
      clientDone = true;
      if (inFlight === 0 && !flushScheduled) call.end();
    });
    call.on('error', (err: Error) => logger.debug('check stream closed', { error: err.message }));
  };
}
