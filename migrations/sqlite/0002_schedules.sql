CREATE TABLE `schedule_labels` (
	`schedule_id` text NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	PRIMARY KEY(`schedule_id`, `key`),
	FOREIGN KEY (`schedule_id`) REFERENCES `schedules`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `schedule_labels_key_value` ON `schedule_labels` (`key`,`value`);--> statement-breakpoint
CREATE TABLE `schedule_runs` (
	`schedule_id` text NOT NULL,
	`tick_at` integer NOT NULL,
	`outcome` text NOT NULL,
	`batch_id` text,
	`reason` text,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`schedule_id`, `tick_at`),
	FOREIGN KEY (`schedule_id`) REFERENCES `schedules`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `schedule_runs_batch` ON `schedule_runs` (`batch_id`);--> statement-breakpoint
CREATE TABLE `schedules` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text,
	`labels` text DEFAULT '{}' NOT NULL,
	`spec` text NOT NULL,
	`status` text DEFAULT '{}' NOT NULL,
	`next_run_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `schedules_tenant` ON `schedules` (`tenant_id`,`id`);--> statement-breakpoint
CREATE INDEX `schedules_next_run` ON `schedules` (`next_run_at`);