ALTER TABLE "items" ADD COLUMN "worker" text;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "exit_code" bigint;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "http_status" bigint;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "attempt_started_at" bigint;--> statement-breakpoint
ALTER TABLE "items" ADD COLUMN "attempt_finished_at" bigint;