ALTER TABLE `items` ADD `worker` text;--> statement-breakpoint
ALTER TABLE `items` ADD `exit_code` integer;--> statement-breakpoint
ALTER TABLE `items` ADD `http_status` integer;--> statement-breakpoint
ALTER TABLE `items` ADD `attempt_started_at` integer;--> statement-breakpoint
ALTER TABLE `items` ADD `attempt_finished_at` integer;