CREATE TABLE "idempotency_keys" (
	"principal" text NOT NULL,
	"key" text NOT NULL,
	"fingerprint" text NOT NULL,
	"request_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_principal_key_pk" PRIMARY KEY("principal","key")
);
--> statement-breakpoint
ALTER TABLE "requests" ALTER COLUMN "key" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "kvs" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
-- Backfilled from "key" before NOT NULL, so databases with earlier requests migrate.
ALTER TABLE "requests" ADD COLUMN "keys" text[];--> statement-breakpoint
UPDATE "requests" SET "keys" = ARRAY["key"] WHERE "keys" IS NULL;--> statement-breakpoint
ALTER TABLE "requests" ALTER COLUMN "keys" SET NOT NULL;--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "outbox_created_at_idx" ON "outbox" USING btree ("created_at");