//! Money is exact: integer amounts in a currency's minor units (cents, yen…).

use std::fmt;

use super::validation::FieldError;

/// An ISO 4217 currency code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        iso_currency::Currency::from_code(&code)
            .map(Self)
            .ok_or_else(|| {
                FieldError::new(
                    "currency",
                    "unknown_currency",
                    "currency must be an ISO 4217 code, e.g. EUR or USD",
                )
            })
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in its minor unit (ISO 4217): 2 for
    /// EUR, 0 for JPY, 3 for BHD; 0 for the few with none defined (XAU…).
    pub fn exponent(&self) -> u16 {
        self.0.exponent().unwrap_or(0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(Currency::parse(" eur ").unwrap().code(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().code(), "JPY");
        assert_eq!(Currency::parse("XYZ").unwrap_err().code, "unknown_currency");
        assert!(Currency::parse("").is_err());
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("BHD").unwrap().exponent(), 3);
    }
}
