CREATE TABLE `tenant_rate_windows` (
	`tenant_id` text NOT NULL,
	`window_start` integer NOT NULL,
	`batches` integer DEFAULT 0 NOT NULL,
	`items` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant_id`, `window_start`),
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `tenant_usage_days` (
	`tenant_id` text NOT NULL,
	`day` text NOT NULL,
	`batches` integer DEFAULT 0 NOT NULL,
	`items_submitted` integer DEFAULT 0 NOT NULL,
	`items_run` integer DEFAULT 0 NOT NULL,
	`item_ms` integer DEFAULT 0 NOT NULL,
	`result_bytes` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant_id`, `day`),
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `batches` ADD `result_bytes` integer DEFAULT 0 NOT NULL;