export type { FailedBatch, FlushReport } from './batcher.ts';
export { MAX_BATCH_SIZE } from './batcher.ts';
export { type CallOptions, Tally, type TallyOptions } from './client.ts';
export { TallyCaptureError, TallyError, TallyNetworkError } from './errors.ts';
export type { MeteredStream, MeterStreamOptions, StreamOutcome } from './meterStream.ts';
export type { RetryPolicy } from './transport.ts';
export type * from './types.ts';
export * from './usage.ts';
