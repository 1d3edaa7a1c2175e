DROP TABLE sandbox_webhook_outbox;
DROP TABLE sandbox_payment_intents;
DROP TABLE sandbox_settings;
DROP TABLE webhook_events;
DROP TABLE payments;
