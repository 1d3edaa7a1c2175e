//! A listing's prices, availability and quotes as GraphQL reads them: views
//! over what REST answers (the same functions compute them).

use async_graphql::{Enum, Object, SimpleObject};
use chrono::NaiveDate;

use crate::api::rest::properties::AvailabilityResponse;
use crate::db::calendar::Entry;
use crate::db::properties::Property;
use crate::domain::calendar::Busy;
use crate::domain::pricing::{Line, NightPrice};
use crate::services::pricing::StayQuote;

/// Why nights are taken (never whose they are).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::calendar::Busy")]
pub enum NightsTaken {
    Booked,
    Held,
    Blocked,
}

/// Which price a night is sold at.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::pricing::Rate")]
pub enum NightRate {
    Base,
    Weekend,
    Override,
}

/// A quote's line.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::pricing::LineKind")]
pub enum QuoteLineKind {
    Nights,
    ExtraGuests,
    Discount,
    CleaningFee,
    ServiceFee,
    Tax,
}

#[derive(SimpleObject)]
pub struct TakenNights {
    /// The first taken night.
    pub start: NaiveDate,
    /// The night after the last.
    pub end: NaiveDate,
    pub kind: NightsTaken,
}

/// One night's price, in minor units.
#[derive(SimpleObject)]
pub struct Night {
    pub date: NaiveDate,
    pub amount: i64,
    pub rate: NightRate,
}

impl From<&NightPrice> for Night {
    fn from(n: &NightPrice) -> Self {
        Self {
            date: n.date,
            amount: n.amount,
            rate: n.rate.into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct QuoteLine {
    pub kind: QuoteLineKind,
    /// Minor units; a discount is negative.
    pub amount: i64,
}

impl From<&Line> for QuoteLine {
    fn from(l: &Line) -> Self {
        Self {
            kind: l.kind.into(),
            amount: l.amount,
        }
    }
}

/// The nights over a window: which are taken, and each free one's price.
pub struct Availability(pub AvailabilityResponse);

#[Object]
impl Availability {
    async fn from(&self) -> NaiveDate {
        self.0.from
    }
    async fn to(&self) -> NaiveDate {
        self.0.to
    }
    async fn currency(&self) -> &str {
        self.0.currency
    }
    /// The taken nights inside the window, clipped to it.
    async fn unavailable(&self) -> Vec<TakenNights> {
        let kind = |b: Busy| NightsTaken::from(b);
        self.0
            .unavailable
            .iter()
            .map(|r| TakenNights {
                start: r.start,
                end: r.end,
                kind: kind(r.kind),
            })
            .collect()
    }
    /// Each free night's price (before fees, discounts and taxes).
    async fn prices(&self) -> Vec<Night> {
        self.0.prices.iter().map(Night::from).collect()
    }
}

/// A stay's price line by line, and whether it can be booked now.
pub struct Quote(pub StayQuote);

#[Object]
impl Quote {
    async fn bookable(&self) -> bool {
        self.0.refusal.is_none()
    }
    /// The code a booking would be refused with.
    async fn refusal(&self) -> Option<&str> {
        self.0.refusal
    }
    async fn currency(&self) -> &str {
        self.0.prices.currency.code()
    }
    /// Digits of its minor unit.
    async fn currency_exponent(&self) -> u16 {
        self.0.prices.currency.exponent()
    }
    async fn nights(&self) -> Vec<Night> {
        self.0.quote.nights.iter().map(Night::from).collect()
    }
    /// They add up to `total`.
    async fn lines(&self) -> Vec<QuoteLine> {
        self.0.quote.lines.iter().map(QuoteLine::from).collect()
    }
    async fn total(&self) -> i64 {
        self.0.quote.total
    }
}

/// What the host charges beside the nightly price (absent or null: none):
/// read on a listing, and given to `setPricing` (checked by REST's code).
#[derive(SimpleObject, async_graphql::InputObject, serde::Serialize, Default)]
#[graphql(input_name = "PricingFields")]
pub struct PricingValues {
    pub weekend_price: Option<i64>,
    pub extra_guest_fee: Option<i64>,
    pub extra_guest_after: Option<i64>,
    pub weekly_discount_pct: Option<i64>,
    pub monthly_discount_pct: Option<i64>,
    pub tax_rate_bp: Option<i64>,
}

#[derive(SimpleObject)]
pub struct ListingPricing {
    #[graphql(flatten)]
    pub values: PricingValues,
    /// The platform's fee on every stay (a server setting).
    pub service_fee_bp: i64,
}

impl ListingPricing {
    pub fn of(p: &Property, service_fee_bp: i64) -> Self {
        let pricing = p.pricing();
        let values = PricingValues {
            weekend_price: pricing.weekend_price,
            extra_guest_fee: pricing.extra_guest_fee,
            extra_guest_after: pricing.extra_guest_after,
            weekly_discount_pct: pricing.weekly_discount_pct,
            monthly_discount_pct: pricing.monthly_discount_pct,
            tax_rate_bp: pricing.tax_rate_bp,
        };
        Self {
            values,
            service_fee_bp,
        }
    }
}

/// A host's block of nights.
pub struct Block(pub Entry);

#[Object]
impl Block {
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    async fn start(&self) -> NaiveDate {
        self.0.check_in
    }
    async fn end(&self) -> NaiveDate {
        self.0.check_out
    }
    async fn reason(&self) -> &str {
        self.0.reason.as_deref().unwrap_or_default()
    }
}
