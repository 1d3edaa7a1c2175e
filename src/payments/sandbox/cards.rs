//! The sandbox's test cards: what each number does when it is posted to a
//! payment's `confirm_url`.

use chrono::Datelike;

/// What a card does to a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeds,
    Declined(&'static str),
    /// Succeeds, but its webhook is never delivered (for reconciliation).
    SucceedsUnheard,
    /// Processing now; succeeds after the configured delay.
    SucceedsLater,
    /// Succeeds; its webhook is delivered twice, with a `payment.processing`
    /// delivered between the two (out of order).
    SucceedsNoisily,
}

/// A card as posted, checked: digits only, and the card's brand and last four.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardInput {
    pub digits: String,
    pub brand: &'static str,
    pub last4: String,
    pub expired: bool,
}

/// Parses `{card_number, exp_month, exp_year, cvc}`; a malformed card is
/// refused (the processor answers 400) with the field at fault.
pub fn parse(
    number: &str,
    exp_month: i64,
    exp_year: i64,
    cvc: &str,
    today: chrono::NaiveDate,
) -> Result<CardInput, (&'static str, &'static str)> {
    let digits: String = number.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("card_number", "a card number is 12 to 19 digits"));
    }
    if !(1..=12).contains(&exp_month) {
        return Err(("exp_month", "exp_month is 1 to 12"));
    }
    let year = if exp_year < 100 {
        2000 + exp_year
    } else {
        exp_year
    };
    if !(2000..=2100).contains(&year) {
        return Err(("exp_year", "exp_year is a year like 2030"));
    }
    if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("cvc", "a cvc is 3 or 4 digits"));
    }
    let brand = match digits.as_bytes()[0] {
        b'4' => "visa",
        b'5' => "mastercard",
        b'3' => "amex",
        _ => "unknown",
    };
    let expired = (year, exp_month) < (i64::from(today.year()), i64::from(today.month()));
    Ok(CardInput {
        last4: digits[digits.len() - 4..].to_owned(),
        digits,
        brand,
        expired,
    })
}

/// What the card does (see the README's table of sandbox cards).
pub fn outcome(card: &CardInput) -> Outcome {
    if card.expired {
        return Outcome::Declined("expired_card");
    }
    match card.digits.as_str() {
        "4242424242424242" => Outcome::Succeeds,
        "4000000000000002" => Outcome::Declined("card_declined"),
        "4000000000009995" => Outcome::Declined("insufficient_funds"),
        "4000000000000077" => Outcome::SucceedsLater,
        "4000000000000259" => Outcome::SucceedsNoisily,
        "4000000000000044" => Outcome::SucceedsUnheard,
        _ => Outcome::Declined("card_declined"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn card(number: &str) -> CardInput {
        parse(number, 12, 2030, "123", today()).unwrap()
    }

    #[test]
    fn each_test_card_does_what_the_readme_says() {
        assert_eq!(outcome(&card("4242 4242 4242 4242")), Outcome::Succeeds);
        assert_eq!(
            outcome(&card("4000000000000002")),
            Outcome::Declined("card_declined")
        );
        assert_eq!(
            outcome(&card("4000-0000-0000-9995")),
            Outcome::Declined("insufficient_funds")
        );
        assert_eq!(outcome(&card("4000000000000077")), Outcome::SucceedsLater);
        assert_eq!(outcome(&card("4000000000000259")), Outcome::SucceedsNoisily);
        assert_eq!(outcome(&card("4000000000000044")), Outcome::SucceedsUnheard);
        assert_eq!(
            outcome(&card("5555555555554444")),
            Outcome::Declined("card_declined")
        );
        let expired = parse("4242424242424242", 10, 26, "123", today()).unwrap();
        assert_eq!(outcome(&expired), Outcome::Declined("expired_card"));
    }

    #[test]
    fn a_card_keeps_only_its_brand_and_last_four() {
        let c = card("4242 4242 4242 4242");
        assert_eq!((c.brand, c.last4.as_str()), ("visa", "4242"));
    }

    #[test]
    fn malformed_cards_name_the_field() {
        let p = |n: &str, m: i64, y: i64, cvc: &str| parse(n, m, y, cvc, today()).map(|_| ());
        assert_eq!(p("4242", 1, 2030, "123").unwrap_err().0, "card_number");
        assert_eq!(
            p("4242x42424242424", 1, 2030, "123").unwrap_err().0,
            "card_number"
        );
        assert_eq!(
            p("4242424242424242", 13, 2030, "123").unwrap_err().0,
            "exp_month"
        );
        assert_eq!(
            p("4242424242424242", 1, 1999, "123").unwrap_err().0,
            "exp_year"
        );
        assert_eq!(p("4242424242424242", 1, 2030, "12").unwrap_err().0, "cvc");
    }
}
