//! What a stay costs: the prices a host sets, and the itemized quote they
//! give for a stay, in integer minor units of the listing's currency.
//!
//! The rules, in the order they are applied (README "Pricing"):
//!
//! 1. **Each night** costs, first match wins: the rate override covering it,
//!    the weekend price on a Friday or Saturday night, else the base price.
//!    Exact: no rounding. `nights` is their sum.
//! 2. **Extra guests**: `extra_guest_fee × (guests − extra_guest_after) ×
//!    nights` when more than `extra_guest_after` come. Exact.
//! 3. **Discount**: the monthly percentage for 28 nights or more, else the
//!    weekly one for 7 or more (never both), of `nights + extra_guests`.
//!    Rounded half up to a whole minor unit, and written as a negative line.
//! 4. **Cleaning fee**: as set. Exact.
//! 5. **Service fee**: `ROOST_SERVICE_FEE_BP` basis points of the stay
//!    (`nights + extra_guests + discount + cleaning_fee`). Rounded half up.
//! 6. **Tax**: the listing's `tax_rate_bp` basis points of that same stay
//!    (the platform's service fee is not taxed as lodging). Rounded half up.
//! 7. **Total**: the sum of the lines, so they always add up.
//!
//! Every amount is in the currency's minor units, whatever its exponent
//! (yen have none, dinars three): rounding is always to one minor unit.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

use super::money::Currency;
use super::stay::StayDates;

/// Nights that earn the weekly and the monthly discount.
pub const WEEKLY_NIGHTS: i64 = 7;
pub const MONTHLY_NIGHTS: i64 = 28;

/// The prices a host sets beside the base nightly price and cleaning fee;
/// each `None` means none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Pricing {
    pub weekend_price: Option<i64>,
    pub extra_guest_fee: Option<i64>,
    pub extra_guest_after: Option<i64>,
    pub weekly_discount_pct: Option<i64>,
    pub monthly_discount_pct: Option<i64>,
    pub tax_rate_bp: Option<i64>,
}

impl Pricing {
    /// With an extra-guest fee, the guests it starts after (at least 1).
    pub fn with_extra_after(mut self, after: i64) -> Self {
        self.extra_guest_after = self.extra_guest_fee.map(|_| after.max(1));
        self
    }
}

/// A season's price: nights in `[start, end)` cost `price`, and a stay
/// touching any of them is at least `min_nights` long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateOverride {
    pub id: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub price: i64,
    pub min_nights: Option<i64>,
}

/// Everything that prices a listing's nights.
#[derive(Clone, Debug)]
pub struct PriceList {
    pub currency: Currency,
    pub base_price: i64,
    pub cleaning_fee: i64,
    pub pricing: Pricing,
    /// Overrides touching the nights being priced (others are ignored).
    pub rates: Vec<RateOverride>,
    pub service_fee_bp: i64,
}

/// Which price a night was sold at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    Base,
    Weekend,
    Override,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NightPrice {
    #[serde(serialize_with = "crate::domain::stay::ymd")]
    pub date: NaiveDate,
    pub amount: i64,
    pub rate: Rate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Nights,
    ExtraGuests,
    Discount,
    CleaningFee,
    ServiceFee,
    Tax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Line {
    pub kind: LineKind,
    pub amount: i64,
}

/// A stay's price, night by night and line by line; `total` is the sum of
/// `lines`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PriceQuote {
    pub nights: Vec<NightPrice>,
    pub lines: Vec<Line>,
    pub total: i64,
}

impl PriceQuote {
    pub fn line(&self, kind: LineKind) -> i64 {
        self.lines
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.amount)
            .sum()
    }
}

/// A quote as clients read it: `GET /properties/{id}/quote`, and the
/// details of a 409 `price_changed`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Quote)]
pub struct QuoteView<'a> {
    pub bookable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<&'a str>,
    pub currency: &'static str,
    /// Digits of its minor unit: amounts are in 10^-exponent of a unit.
    pub currency_exponent: u16,
    pub nights: &'a [NightPrice],
    pub lines: &'a [Line],
    pub total: i64,
}

impl<'a> QuoteView<'a> {
    pub fn new(prices: &PriceList, quote: &'a PriceQuote, refusal: Option<&'a str>) -> Self {
        Self {
            bookable: refusal.is_none(),
            refusal,
            currency: prices.currency.code(),
            currency_exponent: prices.currency.exponent(),
            nights: &quote.nights,
            lines: &quote.lines,
            total: quote.total,
        }
    }
}

/// `amount × rate / scale`, rounded half up (half away from zero) to a
/// whole minor unit; `None` past `i64`.
pub fn share(amount: i64, rate: i64, scale: i64) -> Option<i64> {
    let product = i128::from(amount) * i128::from(rate);
    let scale = i128::from(scale);
    let half = scale / 2;
    let rounded = if product >= 0 {
        (product + half) / scale
    } else {
        -((-product + half) / scale)
    };
    i64::try_from(rounded).ok()
}

impl PriceList {
    /// One night's price, and which rate it is.
    pub fn night(&self, date: NaiveDate) -> NightPrice {
        if let Some(rate) = self.rates.iter().find(|r| r.start <= date && date < r.end) {
            return NightPrice {
                date,
                amount: rate.price,
                rate: Rate::Override,
            };
        }
        match (self.pricing.weekend_price, date.weekday()) {
            (Some(amount), Weekday::Fri | Weekday::Sat) => NightPrice {
                date,
                amount,
                rate: Rate::Weekend,
            },
            _ => NightPrice {
                date,
                amount: self.base_price,
                rate: Rate::Base,
            },
        }
    }

    /// The longest minimum stay among the overrides the stay touches.
    pub fn override_min_nights(&self, dates: &StayDates) -> Option<i64> {
        self.rates
            .iter()
            .filter(|r| r.start < dates.check_out() && dates.check_in() < r.end)
            .filter_map(|r| r.min_nights)
            .max()
    }

    /// The itemized price of `dates` for `guests` (see the module's rules);
    /// `None` only if an amount would not fit in `i64`.
    pub fn quote(&self, dates: &StayDates, guests: i64) -> Option<PriceQuote> {
        let nights: Vec<NightPrice> = dates
            .check_in()
            .iter_days()
            .take_while(|d| *d < dates.check_out())
            .map(|d| self.night(d))
            .collect();
        let count = i64::try_from(nights.len()).ok()?;
        let mut nightly: i64 = 0;
        for n in &nights {
            nightly = nightly.checked_add(n.amount)?;
        }
        let p = &self.pricing;
        let extra = match (p.extra_guest_fee, p.extra_guest_after) {
            (Some(fee), Some(after)) if guests > after => {
                fee.checked_mul(guests - after)?.checked_mul(count)?
            }
            _ => 0,
        };
        let discounted = nightly.checked_add(extra)?;
        let pct = if count >= MONTHLY_NIGHTS {
            p.monthly_discount_pct.or(p.weekly_discount_pct)
        } else if count >= WEEKLY_NIGHTS {
            p.weekly_discount_pct
        } else {
            None
        };
        let discount = match pct {
            Some(pct) if pct > 0 => -share(discounted, pct, 100)?,
            _ => 0,
        };
        let stay = discounted
            .checked_add(discount)?
            .checked_add(self.cleaning_fee)?;
        let service_fee = share(stay, self.service_fee_bp, 10_000)?;
        let tax = share(stay, p.tax_rate_bp.unwrap_or(0), 10_000)?;

        let mut lines = vec![Line {
            kind: LineKind::Nights,
            amount: nightly,
        }];
        let optional = [
            (LineKind::ExtraGuests, extra),
            (LineKind::Discount, discount),
            (LineKind::CleaningFee, self.cleaning_fee),
            (LineKind::ServiceFee, service_fee),
            (LineKind::Tax, tax),
        ];
        lines.extend(
            optional
                .into_iter()
                .filter(|(_, amount)| *amount != 0)
                .map(|(kind, amount)| Line { kind, amount }),
        );
        let mut total: i64 = 0;
        for l in &lines {
            total = total.checked_add(l.amount)?;
        }
        Some(PriceQuote {
            nights,
            lines,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn stay(a: &str, b: &str) -> StayDates {
        StayDates::new(d(a), d(b)).unwrap()
    }

    fn list(currency: &str, base: i64, cleaning: i64) -> PriceList {
        PriceList {
            currency: Currency::parse(currency).unwrap(),
            base_price: base,
            cleaning_fee: cleaning,
            pricing: Pricing::default(),
            rates: Vec::new(),
            service_fee_bp: 0,
        }
    }

    fn adds_up(q: &PriceQuote) {
        assert_eq!(q.lines.iter().map(|l| l.amount).sum::<i64>(), q.total);
        assert_eq!(
            q.nights.iter().map(|n| n.amount).sum::<i64>(),
            q.line(LineKind::Nights)
        );
    }

    #[test]
    fn rounding_is_half_up_to_one_minor_unit() {
        assert_eq!(share(1_005, 1_000, 10_000), Some(101)); // 100.5 → 101
        assert_eq!(share(1_004, 1_000, 10_000), Some(100)); // 100.4 → 100
        assert_eq!(share(15, 50, 100), Some(8)); // 7.5 → 8
        assert_eq!(share(-15, 50, 100), Some(-8));
        assert_eq!(share(i64::MAX, 10_000, 10_000), Some(i64::MAX));
        assert_eq!(share(i64::MAX, 20_000, 10_000), None);
    }

    #[test]
    fn weekends_overrides_and_base_nights() {
        let mut l = list("EUR", 10_000, 2_500);
        l.pricing.weekend_price = Some(14_000);
        l.rates.push(RateOverride {
            id: 1,
            start: d("2027-03-14"), // a Sunday
            end: d("2027-03-16"),
            price: 20_000,
            min_nights: Some(3),
        });
        // Thu 11, Fri 12, Sat 13, Sun 14 (override), Mon 15 (override).
        let q = l.quote(&stay("2027-03-11", "2027-03-16"), 2).unwrap();
        let rates: Vec<Rate> = q.nights.iter().map(|n| n.rate).collect();
        assert_eq!(
            rates,
            [
                Rate::Base,
                Rate::Weekend,
                Rate::Weekend,
                Rate::Override,
                Rate::Override
            ]
        );
        assert_eq!(q.line(LineKind::Nights), 10_000 + 2 * 14_000 + 2 * 20_000);
        assert_eq!(q.total, 78_000 + 2_500);
        adds_up(&q);
        assert_eq!(
            l.override_min_nights(&stay("2027-03-15", "2027-03-16")),
            Some(3)
        );
        assert_eq!(
            l.override_min_nights(&stay("2027-03-16", "2027-03-17")),
            None
        );
    }

    #[test]
    fn extra_guests_pay_per_night_above_the_threshold() {
        let mut l = list("USD", 10_000, 0);
        l.pricing.extra_guest_fee = Some(1_500);
        l.pricing.extra_guest_after = Some(2);
        let two = l.quote(&stay("2027-03-01", "2027-03-04"), 2).unwrap();
        assert_eq!(two.line(LineKind::ExtraGuests), 0);
        assert!(two.lines.iter().all(|l| l.kind != LineKind::ExtraGuests));
        let four = l.quote(&stay("2027-03-01", "2027-03-04"), 4).unwrap();
        assert_eq!(four.line(LineKind::ExtraGuests), 1_500 * 2 * 3);
        adds_up(&four);
    }

    #[test]
    fn discounts_start_at_7_and_28_nights_and_never_stack() {
        let mut l = list("EUR", 10_001, 0);
        l.pricing.weekly_discount_pct = Some(10);
        l.pricing.monthly_discount_pct = Some(25);
        let start = d("2027-01-04");
        let nights = |l: &PriceList, n: i64| {
            let q = l
                .quote(
                    &StayDates::new(start, start + chrono::Duration::days(n)).unwrap(),
                    1,
                )
                .unwrap();
            adds_up(&q);
            q.line(LineKind::Discount)
        };
        assert_eq!(nights(&l, 6), 0);
        // 7 × 100.01 = 700.07; 10 % = 70.007 → 70.01.
        assert_eq!(nights(&l, 7), -7_001);
        // 27 × 10,001 = 270,027; 10 % = 27,002.7 → 27,003.
        assert_eq!(nights(&l, 27), -27_003);
        // 28 × 10,001 = 280,028; 25 % = 70,007.
        assert_eq!(nights(&l, 28), -70_007);
        // Only a weekly discount set: it also covers long stays.
        l.pricing.monthly_discount_pct = None;
        assert_eq!(nights(&l, 28), -28_003);
    }

    #[test]
    fn service_fee_and_tax_round_on_the_stay_and_lines_add_up() {
        let mut l = list("EUR", 9_999, 1_001);
        l.service_fee_bp = 1_250; // 12.5 %
        l.pricing.tax_rate_bp = Some(725); // 7.25 %
        let q = l.quote(&stay("2027-02-01", "2027-02-04"), 1).unwrap();
        let stay_amount = 3 * 9_999 + 1_001; // 30,998
        assert_eq!(q.line(LineKind::ServiceFee), 3_875); // 3,874.75 → 3,875
        assert_eq!(q.line(LineKind::Tax), 2_247); // 2,247.355 → 2,247
        assert_eq!(q.total, stay_amount + 3_875 + 2_247);
        adds_up(&q);
    }

    #[test]
    fn yen_and_dinars_round_to_their_own_minor_unit() {
        // JPY has no minor unit: 10 % of ¥12,345 × 7 = ¥8,641.5 → ¥8,642.
        let mut yen = list("JPY", 12_345, 3_000);
        yen.pricing.weekly_discount_pct = Some(10);
        yen.pricing.tax_rate_bp = Some(1_000);
        let q = yen.quote(&stay("2027-01-04", "2027-01-11"), 1).unwrap();
        assert_eq!(q.line(LineKind::Discount), -8_642);
        // Tax: 10 % of (86,415 − 8,642 + 3,000 = 80,773) = 8,077.3 → 8,077.
        assert_eq!(q.line(LineKind::Tax), 8_077);
        adds_up(&q);
        // BHD has three: 45.125 BHD a night, 5 % tax on 2 nights = 4.5125 → 4.513.
        let mut bhd = list("BHD", 45_125, 0);
        bhd.pricing.tax_rate_bp = Some(500);
        let q = bhd.quote(&stay("2027-01-04", "2027-01-06"), 1).unwrap();
        assert_eq!(q.line(LineKind::Tax), 4_513);
        assert_eq!(q.total, 90_250 + 4_513);
        adds_up(&q);
    }

    /// The README's worked quote, line for line.
    #[test]
    fn the_readmes_worked_quote() {
        let mut l = list("EUR", 10_000, 2_500);
        l.service_fee_bp = 1_000;
        l.pricing = Pricing {
            weekend_price: Some(15_000),
            extra_guest_fee: Some(1_500),
            extra_guest_after: Some(2),
            weekly_discount_pct: Some(10),
            monthly_discount_pct: None,
            tax_rate_bp: Some(725),
        };
        l.rates.push(RateOverride {
            id: 1,
            start: d("2027-03-14"),
            end: d("2027-03-16"),
            price: 20_000,
            min_nights: None,
        });
        let q = l.quote(&stay("2027-03-11", "2027-03-16"), 3).unwrap();
        let lines: Vec<(LineKind, i64)> = q.lines.iter().map(|l| (l.kind, l.amount)).collect();
        assert_eq!(
            lines,
            [
                (LineKind::Nights, 80_000),
                (LineKind::ExtraGuests, 7_500),
                (LineKind::CleaningFee, 2_500),
                (LineKind::ServiceFee, 9_000),
                (LineKind::Tax, 6_525),
            ]
        );
        assert_eq!(q.total, 105_525);
    }

    #[test]
    fn overflow_is_refused_not_wrapped() {
        let l = list("EUR", i64::MAX / 2, 0);
        assert!(l.quote(&stay("2027-01-04", "2027-01-07"), 1).is_none());
    }
}
