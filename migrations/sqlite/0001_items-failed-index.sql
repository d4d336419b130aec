DROP INDEX `items_status`;--> statement-breakpoint
CREATE INDEX `items_failed` ON `items` (`batch_id`,`status`,`idx`) WHERE status IN ('failed', 'cancelled');