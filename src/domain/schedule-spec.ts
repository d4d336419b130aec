import { z } from 'zod';
import { batchSpecSchema, durationSeconds, labelsSchema } from './batch-spec.js';
import { checkCron, CONCURRENCY_POLICIES, ScheduleError } from './schedule-time.js';

/**
 * The schedule spec a client sends: the CronJob of batches. The batch template is any batch
 * spec, items included, validated by the same schema as POST /v1/batches (the server-side
 * checks of a submission run on it too, in the API). Cron and time zone are checked together,
 * so an error names the field that is wrong.
 */

/** The label every batch a schedule starts carries, naming the schedule. */
export const SCHEDULE_LABEL = 'fanout.dev/schedule';

const scheduleFields = {
  name: z.string().min(1).max(253).optional(),
  labels: labelsSchema.optional(),
  schedule: z
    .string()
    .min(1)
    .meta({ description: 'A 5-field cron expression (minute hour day-of-month month day-of-week), or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly. A leading sixth field of seconds is accepted too.', example: '*/15 * * * *' }),
  timeZone: z.string().min(1).default('UTC').meta({ description: 'IANA time zone the expression is read in.', example: 'Europe/Berlin' }),
  concurrencyPolicy: z.enum(CONCURRENCY_POLICIES).default('Allow').meta({ description: 'Allow: runs may overlap. Forbid: skip a tick while a batch of the schedule is unfinished. Replace: cancel the unfinished batches, then start.' }),
  suspend: z.boolean().default(false),
  startingDeadlineSeconds: durationSeconds(0).nullable().optional().meta({ description: 'A tick not started within this many seconds (the scheduler was down or late) is skipped and reported. Unset: the latest missed tick always runs.' }),
  successfulHistoryLimit: z.number().int().min(0).max(1000).default(3),
  failedHistoryLimit: z.number().int().min(0).max(1000).default(1),
  batchTemplate: batchSpecSchema,
};

function checkTiming(spec: { schedule: string; timeZone: string }, ctx: z.RefinementCtx): void {
  try {
    checkCron(spec.schedule, spec.timeZone);
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    ctx.addIssue({ code: 'custom', path: [/time zone/.test(err.message) ? 'timeZone' : 'schedule'], message: err.message });
  }
}

export const scheduleSpecSchema = z.object(scheduleFields).strict().superRefine(checkTiming).meta({ id: 'ScheduleSpec' });
export type ScheduleSpec = z.infer<typeof scheduleSpecSchema>;

/** PATCH: any field; the result of the merge is validated as a whole spec. */
export const schedulePatchSchema = z
  .object({
    name: z.string().min(1).max(253).nullable().optional(),
    labels: labelsSchema.optional(),
    schedule: z.string().min(1).optional(),
    timeZone: z.string().min(1).optional(),
    concurrencyPolicy: z.enum(CONCURRENCY_POLICIES).optional(),
    suspend: z.boolean().optional(),
    startingDeadlineSeconds: durationSeconds(0).nullable().optional(),
    successfulHistoryLimit: z.number().int().min(0).max(1000).optional(),
    failedHistoryLimit: z.number().int().min(0).max(1000).optional(),
    batchTemplate: z.unknown().optional().meta({ description: 'A whole batch spec (replaces the template).' }),
  })
  .strict()
  .meta({ id: 'SchedulePatch' });
export type SchedulePatch = z.infer<typeof schedulePatchSchema>;
