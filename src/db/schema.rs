//! The tables, as Diesel sees them. One schema for both backends: only SQL
//! types that SQLite and PostgreSQL both map (BigInt, Text, Bool, Timestamp).
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

diesel::joinable!(auth_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, auth_tokens);
