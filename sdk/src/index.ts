export { createFanoutClient, isFinalPhase } from './client.js';
export type { Batch, BatchList, BatchPhase, BatchProgress, BatchSpec, FanoutClient, FanoutClientOptions, ItemCounts, ListBatchesOptions, ResultLine, WaitOptions } from './client.js';
export { FanoutProblemError } from './errors.js';
export type { ProblemFieldError } from './errors.js';
export { readLines } from './lines.js';
export { parseEventStream } from './sse.js';
export type { ServerSentEvent } from './sse.js';
export type { components, paths } from './generated/schema.js';
