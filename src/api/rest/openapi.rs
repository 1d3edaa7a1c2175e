//! The REST API's OpenAPI 3.1 description, generated from the code
//! (utoipa): each handler's `#[utoipa::path]` (which also routes it: see
//! `documented_routes!`), the types the handlers parse and answer (request
//! bodies by `raw_body!`), the one error envelope, and what the middleware
//! adds to every operation (bearer tokens, `Idempotency-Key`, 429, 413/415).

use actix_web::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Required, ResponseBuilder, Type};

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

/// The whole document, as `GET /api/openapi.json` serves it.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::Paths::openapi());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let versioned = path.starts_with(super::API_PREFIX);
        for (method, operation) in operations_mut(item) {
            add_common(operation, &method, versioned);
        }
    }
    add_links(&mut doc);
    doc
}

/// From an operation's answer (by status) to the operations it leads to,
/// with each path parameter's runtime expression.
type Links = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// Where a created resource can be used next (OpenAPI links): from the
/// operation that creates it, by its answer's status, to the operations
/// that take it, with each parameter's runtime expression. Clients (and
/// the fuzzer's stateful phase) follow them.
const LINKS: &[Links] = &[
    (
        "register",
        "201",
        &["get_user", "list_user_reviews"],
        &[("id", "$response.body#/id")],
    ),
    (
        "create_property",
        "201",
        &[
            "get_property",
            "update_property",
            "delete_property",
            "get_availability",
            "get_pricing",
            "put_pricing",
            "list_rates",
            "create_rate",
            "get_quote",
            "list_property_reviews",
            "create_block",
        ],
        &[("id", "$response.body#/id")],
    ),
    (
        "create_block",
        "201",
        &["delete_block"],
        &[
            ("id", "$response.body#/property_id"),
            ("block_id", "$response.body#/id"),
        ],
    ),
    (
        "create_rate",
        "201",
        &["delete_rate"],
        &[
            ("id", "$response.body#/property_id"),
            ("rate_id", "$response.body#/id"),
        ],
    ),
    (
        "create_booking",
        "201",
        &[
            "get_booking",
            "change_booking",
            "cancel_booking",
            "get_cancellation",
            "create_payment",
            "list_booking_reviews",
            "create_review",
        ],
        &[("id", "$response.body#/id")],
    ),
    (
        "create_review",
        "201",
        &[
            "get_review",
            "update_review",
            "reply_to_review",
            "delete_review",
        ],
        &[("id", "$response.body#/id")],
    ),
];

fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    for (from, status, targets, parameters) in LINKS {
        let response = doc
            .paths
            .paths
            .values_mut()
            .flat_map(operations_mut)
            .find(|(_, op)| op.operation_id.as_deref() == Some(*from))
            .and_then(|(_, op)| op.responses.responses.get_mut(*status));
        let Some(RefOr::T(response)) = response else {
            continue;
        };
        for target in *targets {
            let link = parameters
                .iter()
                .fold(
                    LinkBuilder::new().operation_id(*target),
                    |link, (name, expr)| link.parameter(*name, *expr),
                )
                .build();
            response.links.insert(target.to_string(), RefOr::T(link));
        }
    }
}

/// A path's operations with their methods.
pub fn operations(item: &PathItem) -> Vec<(Method, &Operation)> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
        (Method::HEAD, &item.head),
        (Method::OPTIONS, &item.options),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
    .collect()
}

fn operations_mut(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::POST, &mut item.post),
        (Method::PUT, &mut item.put),
        (Method::PATCH, &mut item.patch),
        (Method::DELETE, &mut item.delete),
        (Method::HEAD, &mut item.head),
        (Method::OPTIONS, &mut item.options),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    .collect()
}

/// An error response in the envelope, unless the operation names its own.
fn error(operation: &mut Operation, status: &str, description: &str) {
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build();
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert(RefOr::T(response));
}

/// What the middleware and extractors answer for every operation of a
/// kind, written once rather than on each handler.
fn add_common(operation: &mut Operation, method: &Method, versioned: bool) {
    if versioned {
        error(
            operation,
            "429",
            "Over the rate limit: `rate_limited`, with `Retry-After`",
        );
        if crate::http::idempotency::changes_state(method) {
            let key = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retry safe: the first answer is stored (24 h unless \
                     `ROOST_IDEMPOTENCY_TTL_SECS` says otherwise) and replayed, \
                     marked `Idempotent-Replayed: true`, to a retry with the same key, method, \
                     path and body. The same key with another request is 422 \
                     `idempotency_key_reused`; while the first still runs, 409 \
                     `idempotency_in_progress`; a malformed key, 400 `invalid_idempotency_key`.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(crate::domain::idempotency::MAX_KEY_LEN))
                        .pattern(Some("^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$")),
                ))
                .build();
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(key));
            error(
                operation,
                "409",
                "`idempotency_in_progress`: a request with this Idempotency-Key is still running",
            );
            error(
                operation,
                "422",
                "`idempotency_key_reused`: this Idempotency-Key came with another request",
            );
        }
    }
    if versioned || operation.parameters.is_some() {
        error(
            operation,
            "400",
            "Bad input: `validation_failed` with one `{field, code, message}` per bad field \
             in `details`; or a malformed path parameter (`invalid_path`), query \
             (`invalid_query`), body (`invalid_json`) or Idempotency-Key \
             (`invalid_idempotency_key`)",
        );
    }
    if operation.security.is_some() {
        error(
            operation,
            "401",
            "No valid bearer token (missing, expired or revoked): `unauthorized`",
        );
    }
    if operation.request_body.is_some() {
        error(
            operation,
            "413",
            "The body is over the size limit: `payload_too_large`",
        );
        error(
            operation,
            "415",
            "The body is not `application/json`: `unsupported_media_type`",
        );
    }
    error(
        operation,
        "503",
        "The database cannot be reached now: `service_unavailable`; retry",
    );
    error(operation, "500", "A fault of ours: `internal_error`");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v.as_str()) {
                        ("$ref", Some(target)) => found.push(target),
                        _ => refs(v, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn the_spec_lists_exactly_the_routes_the_app_registers() {
        let doc = spec();
        let mut documented: Vec<(String, String)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                operations(item)
                    .into_iter()
                    .map(|(method, _)| (method.to_string(), path.clone()))
            })
            .collect();
        let mut registered: Vec<(String, String)> = super::super::endpoints()
            .into_iter()
            .map(|e| (e.method.to_string(), e.path))
            .collect();
        documented.sort();
        registered.sort();
        assert_eq!(documented, registered);
        assert_eq!(registered.len(), 43);
        // Nothing the spec leaves out is under the REST API.
        for (_, path) in crate::api::UNDOCUMENTED {
            assert!(!path.starts_with(super::super::API_PREFIX), "{path}");
        }
    }

    #[test]
    fn every_operation_is_described_whole() {
        let doc = serde_json::to_value(spec()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100);
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas.contains_key(name), "{target} resolves to nothing");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let what = format!("{method} {path}");
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.keys().any(|s| s.starts_with('2')), "{what}");
                assert!(responses.contains_key("500"), "{what}");
                let keyed = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
                let versioned = path.starts_with("/api/v1");
                assert_eq!(keyed, versioned && method != "get", "{what}");
                assert_eq!(responses.contains_key("429"), versioned, "{what}");
                if op.get("requestBody").is_some() {
                    assert!(responses.contains_key("415"), "{what}");
                }
                // A secured operation answers 401; an open one never needs a token.
                assert_eq!(
                    op.get("security").is_some(),
                    responses.contains_key("401") && path != "/api/v1/auth/login",
                    "{what}"
                );
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "path" {
                        let name = p["name"].as_str().unwrap();
                        assert!(path.contains(&format!("{{{name}}}")), "{what}: {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_link_leads_to_an_operation_with_those_parameters() {
        let doc = serde_json::to_value(spec()).unwrap();
        let mut params_of = std::collections::HashMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let names: Vec<String> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect();
                params_of.insert(op["operationId"].as_str().unwrap().to_owned(), names);
            }
        }
        let mut links = 0;
        for (from, status, targets, parameters) in LINKS {
            assert!(params_of.contains_key(*from), "{from}");
            for target in *targets {
                let mut want = params_of[*target].clone();
                let mut given: Vec<String> =
                    parameters.iter().map(|(n, _)| n.to_string()).collect();
                want.sort();
                given.sort();
                assert_eq!(want, given, "{from} -> {target}");
                links += 1;
            }
            let path = doc["paths"]
                .as_object()
                .unwrap()
                .values()
                .flat_map(|item| item.as_object().unwrap().values())
                .find(|op| op["operationId"] == *from)
                .unwrap();
            assert_eq!(
                path["responses"][status]["links"]
                    .as_object()
                    .unwrap()
                    .len(),
                targets.len()
            );
        }
        assert_eq!(links, 26);
    }

    #[test]
    fn every_example_body_is_one_its_handler_accepts() {
        let doc = serde_json::to_value(spec()).unwrap();
        let example = |name: &str| -> serde_json::Map<String, serde_json::Value> {
            let schema = &doc["components"]["schemas"][name];
            let found = schema
                .get("example")
                .or_else(|| schema["examples"].get(0))
                .unwrap_or_else(|| panic!("{name} has no example"));
            found.as_object().unwrap().clone()
        };
        use super::super::*;
        assert!(properties::listing_input(example("ListingBody")).is_ok());
        assert!(properties::block_input(example("BlockBody")).is_ok());
        assert!(bookings::booking_request(example("BookingBody")).is_ok());
        assert!(bookings::change_input(example("ChangeBody")).is_ok());
        assert!(pricing::pricing_input(example("PricingBody")).is_ok());
        assert!(pricing::rate_input(example("RateBody")).is_ok());
        let guest = Some(crate::domain::review::Side::Guest);
        assert!(reviews::review_input(example("ReviewBody"), guest).is_ok());
        for (name, body) in [("RegisterBody", "register"), ("LoginBody", "login")] {
            let value = serde_json::Value::Object(example(name));
            match body {
                "register" => assert!(
                    serde_json::from_value::<auth::RegisterBody>(value)
                        .unwrap()
                        .parse()
                        .is_ok()
                ),
                _ => assert!(
                    serde_json::from_value::<auth::LoginBody>(value)
                        .unwrap()
                        .parse()
                        .is_ok()
                ),
            }
        }
    }

    #[test]
    fn search_is_described_by_the_parameters_it_accepts() {
        let doc = serde_json::to_value(spec()).unwrap();
        let params = doc["paths"]["/api/v1/properties"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        // Every filter the parser reads, by name: adding or dropping one is a
        // change to the public API and must show up here.
        let mut listed = names.clone();
        listed.sort_unstable();
        let mut expected = vec![
            "city",
            "country",
            "min_price",
            "max_price",
            "guests",
            "amenities",
            "min_rating",
            "min_lat",
            "max_lat",
            "min_lon",
            "max_lon",
            "check_in",
            "check_out",
            "nights",
            "within_from",
            "within_to",
            "sort",
            "limit",
            "cursor",
        ];
        expected.sort_unstable();
        assert_eq!(listed, expected);
        // And a name the spec does not list is refused.
        let refused = super::super::properties::parse_search(vec![("colour".into(), "red".into())]);
        assert!(refused.is_err());
    }

    #[test]
    fn every_body_and_response_has_a_schema() {
        let doc = serde_json::to_value(spec()).unwrap();
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
        // An optional field is not required, whatever type it is described as.
        assert_eq!(schemas["UpdateMeBody"].get("required"), None);
        assert_eq!(
            schemas["RegisterBody"]["required"],
            serde_json::json!(["email", "password", "name"])
        );
    }
}
