import type { components } from './generated/schema.js';

/**
 * Names for the API's shapes, taken from the generated OpenAPI types so they follow
 * openapi.yaml: what the client methods accept and answer.
 */

type Schemas = components['schemas'];

export type Batch = Schemas['Batch'];
export type BatchSpec = Schemas['BatchSpec'];
export type BatchList = Schemas['BatchList'];
export type BatchStatus = Schemas['BatchStatus'];
export type BatchPhase = BatchStatus['phase'];
export type BatchCondition = Schemas['Condition'];
export type ItemCounts = Schemas['ItemCounts'];
export type Item = Schemas['Item'];
export type ItemStatus = Item['status'];
export type ItemAttempt = Schemas['Attempt'];
export type ResultLine = Schemas['ResultLine'];
export type Schedule = Schemas['Schedule'];
export type WebhookEndpoint = Schemas['WebhookEndpoint'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
