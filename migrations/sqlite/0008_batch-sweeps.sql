ALTER TABLE `batches` ADD `sweep` text;--> statement-breakpoint
ALTER TABLE `batches` ADD `sweep_cursor` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `batches_sweep` ON `batches` (`sweep`) WHERE sweep IS NOT NULL;