//! A listing: where it is, what it costs, what it offers, whom it takes.

use std::fmt;

use super::cancellation::{CancellationPolicy, CheckInTime};
use super::money::Currency;
use super::stay::{
    MAX_ADVANCE_NOTICE_DAYS, MAX_BOOKING_WINDOW_DAYS, MAX_NIGHTS, StayRules, TimeZone, Weekdays,
};
use super::validation::{FieldError, FieldErrors};

pub const MAX_PRICE: i64 = 100_000_000;
pub const MAX_CLEANING_FEE: i64 = 10_000_000;
pub const MAX_GUESTS: i64 = 50;

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Country([u8; 2]);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        let unknown = || {
            FieldError::new(
                "country",
                "unknown_country",
                "country must be an ISO 3166-1 alpha-2 code, e.g. FR or US",
            )
        };
        let bytes: [u8; 2] = code.as_bytes().try_into().map_err(|_| unknown())?;
        celes::Country::from_alpha2(&code).map_err(|_| unknown())?;
        Ok(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII letters, checked in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The amenities a listing may offer. Each has a fixed bit in the stored
/// mask: add new ones at the end, never reorder.
pub const AMENITIES: [&str; 30] = [
    "wifi",
    "kitchen",
    "washer",
    "dryer",
    "air_conditioning",
    "heating",
    "dedicated_workspace",
    "tv",
    "hair_dryer",
    "iron",
    "pool",
    "hot_tub",
    "free_parking",
    "ev_charger",
    "crib",
    "gym",
    "bbq_grill",
    "breakfast",
    "indoor_fireplace",
    "smoking_allowed",
    "pets_allowed",
    "beachfront",
    "waterfront",
    "ski_in_out",
    "smoke_alarm",
    "carbon_monoxide_alarm",
    "elevator",
    "wheelchair_accessible",
    "balcony",
    "garden",
];

/// A set of amenities, stored as a bit mask so "has all of these" is one AND.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amenities(i64);

impl Amenities {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, FieldError> {
        let mut mask = 0i64;
        let mut unknown = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            match AMENITIES.iter().position(|known| *known == name) {
                Some(bit) => mask |= 1 << bit,
                None => unknown.push(name.to_owned()),
            }
        }
        if unknown.is_empty() {
            Ok(Self(mask))
        } else {
            Err(FieldError::new(
                "amenities",
                "unknown_amenity",
                format!(
                    "unknown amenities {unknown:?}; known: {}",
                    AMENITIES.join(", ")
                ),
            ))
        }
    }

    /// From a stored mask; bits of no known amenity are dropped.
    pub fn from_mask(mask: i64) -> Self {
        Self(mask & ((1 << AMENITIES.len()) - 1))
    }

    pub fn mask(&self) -> i64 {
        self.0
    }

    pub fn names(&self) -> Vec<&'static str> {
        AMENITIES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// Everything a host says about a listing, each field valid.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub title: String,
    pub description: String,
    pub address: String,
    pub city: String,
    pub country: Country,
    pub latitude: f64,
    pub longitude: f64,
    pub price_per_night: i64,
    pub currency: Currency,
    pub cleaning_fee: i64,
    pub rules: StayRules,
    pub amenities: Amenities,
    pub time_zone: TimeZone,
    pub cancellation_policy: CancellationPolicy,
    pub check_in_time: CheckInTime,
}

/// A listing's fields as a client sent them, any of them missing. A create
/// needs all but `description`, `cleaning_fee` and `amenities`; an update
/// lays its fields over the current listing's and checks the result whole.
#[derive(Clone, Debug, Default)]
pub struct ListingInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub price_per_night: Option<i64>,
    pub currency: Option<String>,
    pub cleaning_fee: Option<i64>,
    pub max_guests: Option<i64>,
    pub min_nights: Option<i64>,
    pub max_nights: Option<i64>,
    pub amenities: Option<Vec<String>>,
    pub advance_notice_days: Option<i64>,
    pub booking_window_days: Option<i64>,
    pub check_in_days: Option<Vec<String>>,
    pub check_out_days: Option<Vec<String>>,
    pub time_zone: Option<String>,
    pub cancellation_policy: Option<String>,
    pub check_in_time: Option<String>,
}

impl ListingInput {
    /// The names of the fields given (what an update changes).
    pub fn given(&self) -> Vec<&'static str> {
        let fields = [
            ("title", self.title.is_some()),
            ("description", self.description.is_some()),
            ("address", self.address.is_some()),
            ("city", self.city.is_some()),
            ("country", self.country.is_some()),
            ("latitude", self.latitude.is_some()),
            ("longitude", self.longitude.is_some()),
            ("price_per_night", self.price_per_night.is_some()),
            ("currency", self.currency.is_some()),
            ("cleaning_fee", self.cleaning_fee.is_some()),
            ("max_guests", self.max_guests.is_some()),
            ("min_nights", self.min_nights.is_some()),
            ("max_nights", self.max_nights.is_some()),
            ("amenities", self.amenities.is_some()),
            ("advance_notice_days", self.advance_notice_days.is_some()),
            ("booking_window_days", self.booking_window_days.is_some()),
            ("check_in_days", self.check_in_days.is_some()),
            ("check_out_days", self.check_out_days.is_some()),
            ("time_zone", self.time_zone.is_some()),
            ("cancellation_policy", self.cancellation_policy.is_some()),
            ("check_in_time", self.check_in_time.is_some()),
        ];
        fields
            .into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
    }

    /// `self`'s fields where given, `base`'s elsewhere.
    pub fn over(self, base: &Listing) -> ListingInput {
        ListingInput {
            title: self.title.or_else(|| Some(base.title.clone())),
            description: self.description.or_else(|| Some(base.description.clone())),
            address: self.address.or_else(|| Some(base.address.clone())),
            city: self.city.or_else(|| Some(base.city.clone())),
            country: self.country.or_else(|| Some(base.country.to_string())),
            latitude: self.latitude.or(Some(base.latitude)),
            longitude: self.longitude.or(Some(base.longitude)),
            price_per_night: self.price_per_night.or(Some(base.price_per_night)),
            currency: self.currency.or_else(|| Some(base.currency.to_string())),
            cleaning_fee: self.cleaning_fee.or(Some(base.cleaning_fee)),
            max_guests: self.max_guests.or(Some(base.rules.max_guests)),
            min_nights: self.min_nights.or(Some(base.rules.min_nights)),
            max_nights: self.max_nights.or(Some(base.rules.max_nights)),
            amenities: self.amenities.or_else(|| {
                Some(
                    base.amenities
                        .names()
                        .into_iter()
                        .map(String::from)
                        .collect(),
                )
            }),
            advance_notice_days: self
                .advance_notice_days
                .or(Some(base.rules.advance_notice_days)),
            booking_window_days: self
                .booking_window_days
                .or(Some(base.rules.booking_window_days)),
            check_in_days: self
                .check_in_days
                .or_else(|| Some(day_names(base.rules.check_in_days))),
            check_out_days: self
                .check_out_days
                .or_else(|| Some(day_names(base.rules.check_out_days))),
            time_zone: self
                .time_zone
                .or_else(|| Some(base.time_zone.name().to_owned())),
            cancellation_policy: self
                .cancellation_policy
                .or_else(|| Some(base.cancellation_policy.as_str().to_owned())),
            check_in_time: self
                .check_in_time
                .or_else(|| Some(base.check_in_time.to_hhmm())),
        }
    }

    /// The listing, or every bad field at once.
    pub fn parse(self, errors: &mut FieldErrors) -> Option<Listing> {
        let title = text(errors, "title", self.title, 1, 120);
        let description = errors.check(
            "description",
            bounded_text(self.description.as_deref().unwrap_or(""), 0, 5000),
        );
        let address = text(errors, "address", self.address, 1, 200);
        let city = text(errors, "city", self.city, 1, 100);
        let country = required(errors, "country", self.country)
            .and_then(|c| errors.check("country", Country::parse(&c)));
        let latitude = required(errors, "latitude", self.latitude)
            .and_then(|v| errors.check("latitude", in_range_f(v, -90.0, 90.0)));
        let longitude = required(errors, "longitude", self.longitude)
            .and_then(|v| errors.check("longitude", in_range_f(v, -180.0, 180.0)));
        let price_per_night = required(errors, "price_per_night", self.price_per_night)
            .and_then(|v| errors.check("price_per_night", in_range(v, 1, MAX_PRICE)));
        let currency = required(errors, "currency", self.currency)
            .and_then(|c| errors.check("currency", Currency::parse(&c)));
        let cleaning_fee = errors.check(
            "cleaning_fee",
            in_range(self.cleaning_fee.unwrap_or(0), 0, MAX_CLEANING_FEE),
        );
        let max_guests = required(errors, "max_guests", self.max_guests)
            .and_then(|v| errors.check("max_guests", in_range(v, 1, MAX_GUESTS)));
        let min_nights = errors.check(
            "min_nights",
            in_range(self.min_nights.unwrap_or(1), 1, MAX_NIGHTS),
        );
        let max_nights = errors.check(
            "max_nights",
            in_range(self.max_nights.unwrap_or(MAX_NIGHTS), 1, MAX_NIGHTS),
        );
        if let (Some(min), Some(max)) = (min_nights, max_nights)
            && max < min
        {
            errors.push(FieldError::new(
                "max_nights",
                "less_than_min_nights",
                "max_nights must be at least min_nights",
            ));
        }
        let amenities = errors.check(
            "amenities",
            Amenities::parse(self.amenities.as_deref().unwrap_or(&[])),
        );
        let advance_notice_days = errors.check(
            "advance_notice_days",
            in_range(
                self.advance_notice_days.unwrap_or(0),
                0,
                MAX_ADVANCE_NOTICE_DAYS,
            ),
        );
        let booking_window_days = errors.check(
            "booking_window_days",
            in_range(
                self.booking_window_days.unwrap_or(0),
                0,
                MAX_BOOKING_WINDOW_DAYS,
            ),
        );
        let days = |errors: &mut FieldErrors, field: &str, names: Option<Vec<String>>| match names {
            None => Some(Weekdays::ALL),
            Some(names) => errors.check(field, Weekdays::parse(&names)),
        };
        let check_in_days = days(errors, "check_in_days", self.check_in_days);
        let check_out_days = days(errors, "check_out_days", self.check_out_days);
        let time_zone = match self.time_zone {
            None => Some(TimeZone::UTC),
            Some(name) => errors.check("time_zone", TimeZone::parse(&name)),
        };
        let cancellation_policy = match self.cancellation_policy {
            None => Some(CancellationPolicy::default()),
            Some(name) => errors.check("cancellation_policy", CancellationPolicy::parse(&name)),
        };
        let check_in_time = match self.check_in_time {
            None => Some(CheckInTime::default()),
            Some(raw) => errors.check("check_in_time", CheckInTime::parse(&raw)),
        };
        if let (Some(notice), Some(window)) = (advance_notice_days, booking_window_days)
            && window > 0
            && window < notice
        {
            errors.push(FieldError::new(
                "booking_window_days",
                "less_than_advance_notice",
                "booking_window_days must be at least advance_notice_days",
            ));
        }
        if !errors.is_empty() {
            return None;
        }
        Some(Listing {
            title: title?,
            description: description?,
            address: address?,
            city: city?,
            country: country?,
            latitude: latitude?,
            longitude: longitude?,
            price_per_night: price_per_night?,
            currency: currency?,
            cleaning_fee: cleaning_fee?,
            rules: StayRules {
                max_guests: max_guests?,
                min_nights: min_nights?,
                max_nights: max_nights?,
                advance_notice_days: advance_notice_days?,
                booking_window_days: booking_window_days?,
                check_in_days: check_in_days?,
                check_out_days: check_out_days?,
            },
            amenities: amenities?,
            time_zone: time_zone?,
            cancellation_policy: cancellation_policy?,
            check_in_time: check_in_time?,
        })
    }
}

fn day_names(days: Weekdays) -> Vec<String> {
    days.names().into_iter().map(String::from).collect()
}

fn required<T>(errors: &mut FieldErrors, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    value
}

fn text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    min: usize,
    max: usize,
) -> Option<String> {
    required(errors, field, value).and_then(|v| errors.check(field, bounded_text(&v, min, max)))
}

/// Trimmed text of `min..=max` characters, with no control characters
/// other than line breaks and tabs.
pub fn bounded_text(raw: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(FieldError::new("text", "required", "must not be empty"));
    }
    if len > max {
        return Err(FieldError::new(
            "text",
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            "text",
            "invalid_characters",
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

pub fn in_range(value: i64, min: i64, max: i64) -> Result<i64, FieldError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "number",
            "out_of_range",
            format!("must be from {min} to {max}"),
        ))
    }
}

fn in_range_f(value: f64, min: f64, max: f64) -> Result<f64, FieldError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "number",
            "out_of_range",
            format!("must be from {min} to {max}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ListingInput {
        ListingInput {
            title: Some(" Loft by the canal ".into()),
            description: None,
            address: Some("Prinsengracht 263".into()),
            city: Some("Amsterdam".into()),
            country: Some("nl".into()),
            latitude: Some(52.375),
            longitude: Some(4.884),
            price_per_night: Some(14_000),
            currency: Some("eur".into()),
            cleaning_fee: None,
            max_guests: Some(2),
            min_nights: None,
            max_nights: None,
            amenities: Some(vec!["wifi".into(), "kitchen".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn a_full_listing_parses_with_defaults() {
        let mut errors = FieldErrors::new();
        let l = full().parse(&mut errors).unwrap();
        assert_eq!(l.title, "Loft by the canal");
        assert_eq!((l.country.as_str(), l.currency.code()), ("NL", "EUR"));
        assert_eq!((l.rules.min_nights, l.rules.max_nights), (1, MAX_NIGHTS));
        assert_eq!(l.amenities.names(), vec!["wifi", "kitchen"]);
        assert_eq!(l.cleaning_fee, 0);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let input = ListingInput {
            title: Some(" ".into()),
            country: Some("XX".into()),
            latitude: Some(91.0),
            longitude: Some(f64::NAN),
            price_per_night: Some(0),
            currency: Some("EURO".into()),
            cleaning_fee: Some(-1),
            max_guests: Some(51),
            min_nights: Some(5),
            max_nights: Some(3),
            amenities: Some(vec!["moat".into()]),
            ..Default::default()
        };
        let mut errors = FieldErrors::new();
        assert!(input.parse(&mut errors).is_none());
        let fields: Vec<_> = errors
            .into_vec()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        for expected in [
            ("title", "required"),
            ("address", "required"),
            ("city", "required"),
            ("country", "unknown_country"),
            ("latitude", "out_of_range"),
            ("longitude", "out_of_range"),
            ("price_per_night", "out_of_range"),
            ("currency", "unknown_currency"),
            ("cleaning_fee", "out_of_range"),
            ("max_guests", "out_of_range"),
            ("max_nights", "less_than_min_nights"),
            ("amenities", "unknown_amenity"),
        ] {
            assert!(
                fields.contains(&(expected.0.to_owned(), expected.1)),
                "{expected:?} in {fields:?}"
            );
        }
    }

    #[test]
    fn an_update_is_checked_against_the_rest_of_the_listing() {
        let mut errors = FieldErrors::new();
        let base = full().parse(&mut errors).unwrap();
        let patch = ListingInput {
            min_nights: Some(400),
            ..Default::default()
        };
        assert!(patch.over(&base).parse(&mut errors).is_none());
        let mut errors = FieldErrors::new();
        let patch = ListingInput {
            price_per_night: Some(9_900),
            ..Default::default()
        };
        let updated = patch.over(&base).parse(&mut errors).unwrap();
        assert_eq!(updated.price_per_night, 9_900);
        assert_eq!(updated.amenities, base.amenities);
    }

    #[test]
    fn amenities_mask_round_trips() {
        let a = Amenities::parse(&["pool", "wifi", "pool"]).unwrap();
        assert_eq!(Amenities::from_mask(a.mask()).names(), vec!["wifi", "pool"]);
        assert_eq!(
            Amenities::from_mask(i64::MAX).names().len(),
            AMENITIES.len()
        );
    }
}
