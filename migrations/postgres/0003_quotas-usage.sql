CREATE TABLE "tenant_rate_windows" (
	"tenant_id" text NOT NULL,
	"window_start" bigint NOT NULL,
	"batches" bigint DEFAULT 0 NOT NULL,
	"items" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "tenant_rate_windows_tenant_id_window_start_pk" PRIMARY KEY("tenant_id","window_start")
);
--> statement-breakpoint
CREATE TABLE "tenant_usage_days" (
	"tenant_id" text NOT NULL,
	"day" text NOT NULL,
	"batches" bigint DEFAULT 0 NOT NULL,
	"items_submitted" bigint DEFAULT 0 NOT NULL,
	"items_run" bigint DEFAULT 0 NOT NULL,
	"item_ms" bigint DEFAULT 0 NOT NULL,
	"result_bytes" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "tenant_usage_days_tenant_id_day_pk" PRIMARY KEY("tenant_id","day")
);
--> statement-breakpoint
ALTER TABLE "batches" ADD COLUMN "result_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_rate_windows" ADD CONSTRAINT "tenant_rate_windows_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tenant_usage_days" ADD CONSTRAINT "tenant_usage_days_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;