export { createFanoutClient } from './client.js';
export type { DeliveryOwner, FanoutClient, FanoutClientOptions, ListBatchesOptions, NdjsonBody } from './client.js';
export { FanoutProblemError, problemFromResponse } from './errors.js';
export type { ProblemFieldError } from './errors.js';
export { readLines } from './lines.js';
export { paginate } from './pages.js';
export type { Page } from './pages.js';
export { parseEventStream, SseParser } from './sse.js';
export type { ServerSentEvent, ServerSentMessage } from './sse.js';
export type {
  Batch,
  BatchCondition,
  BatchList,
  BatchPhase,
  BatchSpec,
  BatchStatus,
  Item,
  ItemAttempt,
  ItemCounts,
  ItemStatus,
  ResultLine,
  Schedule,
  WebhookDelivery,
  WebhookEndpoint,
} from './types.js';
export { isFinalPhase } from './wait.js';
export type { BatchProgress, WaitOptions } from './wait.js';
export type { components, paths } from './generated/schema.js';
