//! The tables, as Diesel sees them. One schema for both backends: only SQL
//! types that SQLite and PostgreSQL both map (BigInt, Text, Bool, Double,
//! Date, Timestamp, Binary).
//! Timestamps are UTC, stored without a zone.

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        guest_review_count -> BigInt,
        guest_rating_sum -> BigInt,
    }
}

diesel::table! {
    auth_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    properties (id) {
        id -> BigInt,
        host_id -> BigInt,
        title -> Text,
        description -> Text,
        address -> Text,
        city -> Text,
        city_key -> Text,
        country -> Text,
        latitude -> Double,
        longitude -> Double,
        price_per_night -> BigInt,
        currency -> Text,
        cleaning_fee -> BigInt,
        max_guests -> BigInt,
        min_nights -> BigInt,
        max_nights -> BigInt,
        amenities -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        weekend_price -> Nullable<BigInt>,
        extra_guest_fee -> Nullable<BigInt>,
        extra_guest_after -> Nullable<BigInt>,
        weekly_discount_pct -> Nullable<BigInt>,
        monthly_discount_pct -> Nullable<BigInt>,
        tax_rate_bp -> Nullable<BigInt>,
        advance_notice_days -> BigInt,
        booking_window_days -> BigInt,
        check_in_days -> BigInt,
        check_out_days -> BigInt,
        time_zone -> Text,
        cancellation_policy -> Text,
        check_in_minute -> BigInt,
        review_count -> BigInt,
        rating_sum -> BigInt,
        cleanliness_sum -> BigInt,
        accuracy_sum -> BigInt,
        communication_sum -> BigInt,
        location_sum -> BigInt,
        check_in_sum -> BigInt,
        value_sum -> BigInt,
        rating_avg_x100 -> BigInt,
        seasons_end -> Nullable<Date>,
    }
}

diesel::table! {
    rate_overrides (id) {
        id -> BigInt,
        property_id -> BigInt,
        start_date -> Date,
        end_date -> Date,
        price -> BigInt,
        min_nights -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    calendar_entries (id) {
        id -> BigInt,
        property_id -> BigInt,
        kind -> Text,
        status -> Text,
        check_in -> Date,
        check_out -> Date,
        hold_expires_at -> Nullable<Timestamp>,
        created_by -> BigInt,
        guest_id -> Nullable<BigInt>,
        guests -> Nullable<BigInt>,
        nights -> Nullable<BigInt>,
        price_per_night -> Nullable<BigInt>,
        cleaning_fee -> Nullable<BigInt>,
        total -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        reason -> Nullable<Text>,
        cancelled_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        price_detail -> Nullable<Text>,
        reviews_close_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    calendar_events (property_id, seq) {
        property_id -> BigInt,
        seq -> BigInt,
        kind -> Text,
        entry_id -> Nullable<BigInt>,
        check_in -> Nullable<Date>,
        check_out -> Nullable<Date>,
        hold_expires_at -> Nullable<Timestamp>,
        guest_id -> Nullable<BigInt>,
        host_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    calendar_heads (property_id) {
        property_id -> BigInt,
        seq -> BigInt,
        rules -> BigInt,
    }
}

diesel::table! {
    deployment (id) {
        id -> BigInt,
        event_channel -> Text,
    }
}

diesel::joinable!(auth_tokens -> users (user_id));
diesel::joinable!(properties -> users (host_id));
diesel::joinable!(calendar_entries -> properties (property_id));
diesel::joinable!(calendar_events -> properties (property_id));
diesel::joinable!(calendar_heads -> properties (property_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    auth_tokens,
    properties,
    calendar_entries,
    calendar_events,
    calendar_heads,
    payments,
    refunds,
    reviews
);

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        actor_id -> Nullable<BigInt>,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        action -> Text,
        object_type -> Text,
        object_id -> Nullable<BigInt>,
        details -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, key_hash) {
        scope -> Text,
        key_hash -> Text,
        fingerprint -> Text,
        claim -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        status -> Nullable<BigInt>,
        response -> Nullable<Binary>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        booking_id -> BigInt,
        guest_id -> BigInt,
        gateway -> Text,
        gateway_payment_id -> Text,
        status -> Text,
        amount -> BigInt,
        currency -> Text,
        failure_reason -> Nullable<Text>,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        amount_refunded -> BigInt,
        checked_at -> Nullable<Timestamp>,
        change_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    booking_changes (id) {
        id -> BigInt,
        booking_id -> BigInt,
        check_in -> Date,
        check_out -> Date,
        guests -> BigInt,
        total -> BigInt,
        difference -> BigInt,
        price_detail -> Text,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refunds (id) {
        id -> BigInt,
        payment_id -> BigInt,
        booking_id -> BigInt,
        gateway_refund_id -> Nullable<Text>,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        reason -> Text,
        lines -> Text,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        checked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_events (gateway, event_id) {
        gateway -> Text,
        event_id -> Text,
        kind -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    sandbox_settings (id) {
        id -> BigInt,
        api_key -> Text,
        webhook_secret -> Text,
    }
}

diesel::table! {
    sandbox_payment_intents (id) {
        id -> Text,
        client_secret -> Text,
        amount -> BigInt,
        currency -> Text,
        reference -> Text,
        status -> Text,
        last_error -> Nullable<Text>,
        card_brand -> Nullable<Text>,
        card_last4 -> Nullable<Text>,
        succeed_at -> Nullable<Timestamp>,
        amount_refunded -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sandbox_webhook_outbox (id) {
        id -> BigInt,
        event_id -> Text,
        payload -> Text,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sandbox_refunds (id) {
        id -> Text,
        payment_intent -> Text,
        amount -> BigInt,
        status -> Text,
        reference -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sandbox_idempotency_keys (key) {
        key -> Text,
        request -> Text,
        status -> BigInt,
        response -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reviews (id) {
        id -> BigInt,
        booking_id -> BigInt,
        property_id -> BigInt,
        side -> Text,
        author_id -> BigInt,
        subject_id -> BigInt,
        rating -> BigInt,
        cleanliness -> Nullable<BigInt>,
        accuracy -> Nullable<BigInt>,
        communication -> Nullable<BigInt>,
        location -> Nullable<BigInt>,
        check_in -> Nullable<BigInt>,
        value -> Nullable<BigInt>,
        comment -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
        reply -> Nullable<Text>,
        replied_at -> Nullable<Timestamp>,
        reply_updated_at -> Nullable<Timestamp>,
        removed_at -> Nullable<Timestamp>,
        removed_by -> Nullable<BigInt>,
        removal_reason -> Nullable<Text>,
    }
}

diesel::joinable!(reviews -> calendar_entries (booking_id));
