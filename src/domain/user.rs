//! Accounts: who may sign in, with which role, under which name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::validation::FieldError;

/// A normalized (trimmed, lower-cased) email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let invalid = |message: &str| FieldError::new("email", "invalid_email", message);
        if email.is_empty() {
            return Err(invalid("email is required"));
        }
        if email.chars().count() > Self::MAX_LEN {
            return Err(invalid("email must be at most 254 characters"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(invalid("email must look like name@example.com"));
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&*+-/=?^_`{|}~.".contains(c) || !c.is_ascii())
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid("email must look like name@example.com"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 8 to 128 characters. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                "password",
                "password_too_short",
                "password must be at least 8 characters",
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                "password",
                "password_too_long",
                "password must be at most 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A person's display name: 1 to 100 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new("name", "required", "name is required"));
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(FieldError::new(
                "name",
                "too_long",
                "name must be at most 100 characters",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "invalid_characters",
                "name must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may do: guests book, hosts also list places, admins manage accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    Host,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Host => "host",
            Role::Admin => "admin",
        }
    }

    /// The roles anyone may pick for themselves at registration.
    pub fn parse_self_chosen(raw: &str) -> Result<Self, FieldError> {
        match raw.parse::<Role>() {
            Ok(role @ (Role::Guest | Role::Host)) => Ok(role),
            _ => Err(FieldError::new(
                "role",
                "invalid_role",
                "role must be one of guest, host",
            )),
        }
    }
}

impl FromStr for Role {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "guest" => Ok(Role::Guest),
            "host" => Ok(Role::Host),
            "admin" => Ok(Role::Admin),
            _ => Err(FieldError::new(
                "role",
                "invalid_role",
                "role must be one of guest, host, admin",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa mple.com",
            "'; DROP TABLE users;--@x.com",
            "ada@@example.com",
            "ada..b@example.com",
            "ada@-example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn password_length_bounds() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(129)).unwrap_err().code,
            "password_too_long"
        );
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PersonName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"n".repeat(101)).is_err());
        assert!(PersonName::parse("bell\u{7}").is_err());
        assert!(PersonName::parse("Robert'); DROP TABLE users;--").is_ok());
    }

    #[test]
    fn nobody_registers_as_admin() {
        assert_eq!(Role::parse_self_chosen("guest").unwrap(), Role::Guest);
        assert_eq!(Role::parse_self_chosen("host").unwrap(), Role::Host);
        assert!(Role::parse_self_chosen("admin").is_err());
        assert!(Role::parse_self_chosen("root").is_err());
    }
}
