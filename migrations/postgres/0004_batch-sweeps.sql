ALTER TABLE "batches" ADD COLUMN "sweep" text;--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "sweep_cursor" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "batches_sweep" ON "batches" USING btree ("sweep") WHERE sweep IS NOT NULL;