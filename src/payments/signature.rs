//! Webhook signatures, as Stripe signs them: a header
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` where each `v1` is HMAC-SHA256
//! over `"{t}.{raw body}"` under a webhook secret. A sender rotating its
//! secret signs with both; any `v1` that matches any accepted secret will
//! do. The check is constant-time, and a timestamp further than the
//! tolerance from now (either way) is refused, so a captured delivery
//! cannot be replayed later.

use hmac::Mac;

use crate::domain::crypto::{hex, mac, unhex};

/// Why a signature was refused (the audit trail's `webhook.rejected` says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Stale,
    Mismatch,
}

impl SignatureError {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Stale => "signature_stale",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// The header value signing `body` at unix time `t` with each secret.
pub fn sign(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        let mut m = mac(secret.as_bytes());
        m.update(format!("{t}.").as_bytes());
        m.update(body);
        header.push_str(",v1=");
        header.push_str(&hex(&m.finalize().into_bytes()));
    }
    header
}

/// Checks `header` against `body` at unix time `now`: some `v1` must be an
/// HMAC of `"{t}.{body}"` under some secret, and `t` within `tolerance`
/// seconds of now.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => signatures.push(unhex(v).ok_or(SignatureError::Malformed)?),
            // Other schemes (v0…) are ignored, as Stripe's clients do.
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    let prefix = format!("{t}.");
    for secret in secrets {
        for signature in &signatures {
            let mut m = mac(secret.as_bytes());
            m.update(prefix.as_bytes());
            m.update(body);
            // The MAC's own comparison: constant-time.
            if m.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let header = sign(&["whsec_a"], 1_000, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &["whsec_a"], 1_100, 300),
            Ok(())
        );
        assert_eq!(verify(Some(&header), BODY, &["whsec_a"], 900, 300), Ok(()));
    }

    #[test]
    fn every_kind_of_bad_signature_is_refused_for_its_reason() {
        let header = sign(&["whsec_a"], 1_000, BODY);
        let check = |h: Option<&str>, body: &[u8], secret: &str, now: i64| {
            verify(h, body, &[secret], now, 300)
        };
        assert_eq!(
            check(None, BODY, "whsec_a", 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(Some("garbage"), BODY, "whsec_a", 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some("t=1000"), BODY, "whsec_a", 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some("t=x,v1=00"), BODY, "whsec_a", 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some(&header), BODY, "whsec_a", 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(Some(&header), BODY, "whsec_b", 1_000),
            Err(SignatureError::Mismatch)
        );
        let changed = br#"{"id":"evt_1","type":"payment.succeeded","amount":1}"#;
        assert_eq!(
            check(Some(&header), changed, "whsec_a", 1_000),
            Err(SignatureError::Mismatch)
        );
        // A signature moved to another timestamp no longer matches.
        let moved = header.replacen("t=1000", "t=1001", 1);
        assert_eq!(
            check(Some(&moved), BODY, "whsec_a", 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn during_a_rotation_any_v1_under_any_accepted_secret_will_do() {
        let both = sign(&["whsec_old", "whsec_new"], 1_000, BODY);
        assert_eq!(
            verify(Some(&both), BODY, &["whsec_new"], 1_000, 300),
            Ok(())
        );
        assert_eq!(
            verify(Some(&both), BODY, &["whsec_old"], 1_000, 300),
            Ok(())
        );
        let old_only = sign(&["whsec_old"], 1_000, BODY);
        assert_eq!(
            verify(
                Some(&old_only),
                BODY,
                &["whsec_new", "whsec_old"],
                1_000,
                300
            ),
            Ok(())
        );
    }
}
