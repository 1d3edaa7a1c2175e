//! The REST API's OpenAPI 3.1 description, generated from the types the
//! handlers parse and answer (utoipa): the request bodies (`raw_body!`),
//! the responses, and the one error envelope.

use utoipa::OpenApi;

use super::{audit, auth, bookings, pricing, properties, reviews, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Roost",
        description = "A real-time reservation server: listings, search, bookings, payments, reviews."
    ),
    components(schemas(
        crate::error::Envelope,
        properties::ListingBody,
        properties::BlockBody,
        bookings::BookingBody,
        bookings::ChangeBody,
        pricing::PricingBody,
        pricing::RateBody,
        reviews::ReviewBody,
        reviews::ReplyBody,
        reviews::RemovalBody,
        auth::LoginResponse,
        users::UserResponse,
        properties::PropertyResponse,
        properties::AvailabilityResponse,
        properties::BlockResponse,
        pricing::PricingResponse,
        pricing::RateResponse,
        pricing::RatesResponse,
        crate::domain::pricing::QuoteView,
        bookings::BookingResponse,
        bookings::PaymentResponse,
        bookings::CancellationResponse,
        reviews::ReviewResponse,
        reviews::BookingReviews,
        reviews::ListingReviews,
        reviews::GuestReviews,
        audit::AuditEntryResponse,
    ))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_and_response_has_a_schema() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "Error",
            "ErrorBody",
            "ListingBody",
            "BookingBody",
            "BookingResponse",
            "NightPrice",
            "Line",
            "Quote",
            "PropertyResponse",
            "ReviewResponse",
        ] {
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        // A body is described by its own fields, required where the
        // handler requires them, and nothing else.
        let booking = &schemas["BookingBody"];
        let mut fields: Vec<&str> = booking["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut declared = bookings::BookingBody::FIELDS.to_vec();
        fields.sort_unstable();
        declared.sort_unstable();
        assert_eq!(fields, declared);
        assert_eq!(
            booking["required"],
            serde_json::json!(["property_id", "check_in", "check_out"])
        );
        assert_eq!(booking["properties"]["check_in"]["format"], "date");
    }
}
